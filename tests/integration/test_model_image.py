"""The model-server image, for real: build it, run it, call it, stop it, push and pull it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from course_pkg import containers
from course_pkg.serving.process import free_port
from course_pkg.training import train_churn


@pytest.fixture(scope="session")
def server_image(base_image: str, slim_base_image: str) -> Iterator[containers.BuiltImage]:
    containers.prepare_context()
    yield containers.build_image(
        "model-server:test", base_image=slim_base_image, build_base_image=base_image
    )


@pytest.fixture(scope="module")
def record() -> dict[str, Any]:
    return dict(json.loads(train_churn().x_test.head(1).to_json(orient="records"))[0])


def test_image_is_small_labelled_and_non_root(server_image: containers.BuiltImage) -> None:
    assert server_image.size_bytes <= 350e6, f"{server_image.size_bytes / 1e6:.0f} MB"
    labels = server_image.labels
    manifest = json.loads((containers.MODEL_CONTEXT / "manifest.json").read_text())
    assert labels["io.course.model.name"] == "churn"
    assert labels["io.course.model.version"] == manifest["version"]
    assert labels["io.course.model.sha256"] == manifest["files"]["model.onnx"]["sha256"]
    assert len(labels["org.opencontainers.image.revision"]) == 40
    assert labels["org.opencontainers.image.created"].endswith("Z")
    config = containers.image_config(server_image.image_id)
    assert config["User"] == "10001"
    assert config["Entrypoint"] == ["python", "-m", "course_pkg", "serve"]  # exec form
    assert "8000/tcp" in config["ExposedPorts"]
    assert config["Healthcheck"]["Test"][0] == "CMD"


def test_run_call_and_stop_cleanly(
    server_image: containers.BuiltImage, record: dict[str, Any]
) -> None:
    port = free_port()
    server = containers.ServerContainer(server_image.image_id, port=port).start()
    try:
        assert server.ready_after < 10
        native = httpx.post(f"{server.url}/v1/models/churn/predict", json={"records": [record]})
        assert native.status_code == 200 and native.json()["version"] == "1.0.0"
        columns = list(record)
        mlflow = httpx.post(
            f"{server.url}/invocations",
            json={"dataframe_split": {"columns": columns, "data": [list(record.values())]}},
        )
        assert mlflow.json() == {"predictions": [native.json()["predictions"][0]["label"]]}
        deadline = time.monotonic() + 30
        while server.health() != "healthy" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert server.health() == "healthy"  # the image's own HEALTHCHECK passed
        uid = server.container.exec_run(["id", "-u"]).output.decode().strip()
        assert uid == "10001"
    finally:
        code = server.stop()
    assert code == 0, server.logs[-2000:]
    lines = containers.log_lines(server.logs)  # every stdout line is JSON
    assert any(line.get("route") == "/v1/models/{name}/predict" for line in lines)


def test_sigterm_mid_load_loses_no_request(
    server_image: containers.BuiltImage, record: dict[str, Any]
) -> None:
    port = free_port()
    server = containers.ServerContainer(server_image.image_id, port=port).start()
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client() as client:
            while not stop.is_set():
                try:
                    response = client.post(
                        f"{server.url}/v1/models/churn/predict", json={"records": [record]}
                    )
                except httpx.TransportError:
                    break  # refused or closed: the server stopped accepting; not a failure
                statuses.append(response.status_code)

    worker = threading.Thread(target=load)
    worker.start()
    time.sleep(1.0)
    code = server.stop()  # docker stop: SIGTERM, wait, SIGKILL after 20 s
    stop.set()
    worker.join(10)
    assert code == 0
    assert statuses and set(statuses) == {200}, set(statuses)  # no answered request failed


def test_env_configures_the_server_and_a_model_can_be_mounted(
    server_image: containers.BuiltImage, tmp_path: Path
) -> None:
    from course_pkg.training import package_digits

    digits = package_digits(tmp_path / "digits").path
    # the container runs as uid 10001: a mounted model must be readable by it
    for path in [digits, *digits.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    port = free_port()
    with containers.ServerContainer(
        server_image.image_id,
        port=port,
        env={"COURSE_SERVE_MAX_ROWS": "2", "COURSE_SERVE_LOG_LEVEL": "warning"},
        command=["/models/digits"],
        volumes={str(digits): {"bind": "/models/digits", "mode": "ro"}},
    ) as server:
        names = [m["name"] for m in httpx.get(f"{server.url}/v1/models").json()["models"]]
        assert names == ["digits"]
        rows = [{"pixels": [0.0] * 64}] * 3
        too_many = httpx.post(f"{server.url}/v1/models/digits/predict", json={"records": rows})
        assert too_many.status_code == 413  # COURSE_SERVE_MAX_ROWS=2 took effect


def test_server_verifies_the_model_signing_signature_before_loading(
    server_image: containers.BuiltImage, record: dict[str, Any], tmp_path: Path
) -> None:
    import shutil

    from course_pkg.artifacts import generate_keypair, sign_package

    private, _ = generate_keypair(tmp_path / "keys")
    signed = tmp_path / "signed"
    (signed / "keys").mkdir(parents=True)
    shutil.copy(tmp_path / "keys" / "signing_key.pub", signed / "keys")
    shutil.copytree(containers.MODEL_CONTEXT, signed / "churn")
    sign_package(signed / "churn", private)
    for path in [signed, *signed.rglob("*")]:  # readable by the container's uid 10001
        path.chmod(0o755 if path.is_dir() else 0o644)
    run = {
        "command": ["/signed/churn", "--key", "/signed/keys/signing_key.pub"],
        "volumes": {str(signed): {"bind": "/signed", "mode": "ro"}},
    }
    with containers.ServerContainer(server_image.image_id, port=free_port(), **run) as server:
        answer = httpx.post(f"{server.url}/v1/models/churn/predict", json={"records": [record]})
        assert answer.status_code == 200

    onnx = signed / "churn" / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-1] + b"\0")  # one byte changed after signing
    refused = containers.ServerContainer(server_image.image_id, port=free_port(), **run)
    with pytest.raises(TimeoutError):
        refused.start(timeout=20)  # never ready; start() stops it and keeps the logs
    assert "TamperedPackageError" in refused.logs and "model.onnx" in refused.logs


def test_push_to_a_real_registry_and_pull_by_digest(
    server_image: containers.BuiltImage, record: dict[str, Any]
) -> None:
    import os
    import shutil

    if shutil.which("docker-registry") is None:
        reason = "Debian's docker-registry is not installed (apt-get install docker-registry)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}: .ci/run installs it")
        pytest.skip(reason)
    with containers.LocalRegistry(port=free_port()) as registry:
        repository = f"{registry.address}/model-server"
        labels = server_image.labels
        tags = containers.tags_for(
            labels["org.opencontainers.image.version"],
            labels["org.opencontainers.image.revision"],
            labels["io.course.model.version"],
        )
        containers.tag_image(server_image.image_id, repository, tags)
        digests = {tag: containers.push(repository, tag) for tag in tags}
        assert len(set(digests.values())) == 1  # three names, one image
        assert registry.catalog() == {"repositories": ["model-server"]}
        docker = containers.client()
        for tag in tags:
            docker.images.remove(f"{repository}:{tag}")
        digest = digests[tags[0]]
        pulled = containers.pull_by_digest(repository, digest)
        assert pulled.id == server_image.image_id  # the same bytes came back
        port = free_port()
        with containers.ServerContainer(f"{repository}@{digest}", port=port) as server:
            answer = httpx.post(f"{server.url}/v1/models/churn/predict", json={"records": [record]})
            assert answer.status_code == 200
        docker.images.remove(f"{repository}@{digest}")
