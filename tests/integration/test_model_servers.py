"""Other model servers, run for real on 127.0.0.1: MLflow serve, TorchServe, TensorFlow."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from course_pkg.servers.mlflow_serve import MlflowServer, save_churn_mlflow
from course_pkg.serving.process import ServerProcess
from course_pkg.training import train_churn


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return train_churn().x_test.head(8)


@pytest.fixture(scope="module")
def mlflow_server(
    model_packages: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    model_dir = save_churn_mlflow(
        tmp_path_factory.mktemp("mlflow") / "churn", model_packages["churn"]
    )
    assert (model_dir / "MLmodel").is_file()
    with MlflowServer(model_dir) as server:
        yield server


def test_mlflow_serve_answers_every_format_like_our_server(
    mlflow_server: MlflowServer, model_packages: dict[str, Path], frame: pd.DataFrame
) -> None:
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    split = json.loads(frame.to_json(orient="split", index=False))
    bodies = {
        "dataframe_split": {"dataframe_split": split},
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs": {"inputs": {column: frame[column].tolist() for column in frame.columns}},
    }
    url = f"{mlflow_server.url}/invocations"
    answers = {name: httpx.post(url, json=body, timeout=30) for name, body in bodies.items()}
    answers["text/csv"] = httpx.post(
        url,
        content=frame.to_csv(index=False),
        headers={"content-type": "text/csv"},
        timeout=30,
    )
    for name, answer in answers.items():
        assert answer.status_code == 200, (name, answer.text)
    labels = {name: answer.json()["predictions"] for name, answer in answers.items()}
    assert len({json.dumps(v) for v in labels.values()}) == 1, labels
    with ServerProcess([model_packages["churn"]]) as ours:
        mine = httpx.post(f"{ours.url}/invocations", json=bodies["dataframe_split"]).json()
    assert mine["predictions"] == labels["dataframe_split"]


def test_mlflow_serve_error_shape(mlflow_server: MlflowServer, frame: pd.DataFrame) -> None:
    url = f"{mlflow_server.url}/invocations"
    wrong_key = httpx.post(url, json={"rows": []}, timeout=30)
    assert wrong_key.status_code == 400
    assert wrong_key.json()["error_code"] == "BAD_REQUEST"
    assert "dataframe_split" in wrong_key.json()["message"]
    xml = httpx.post(url, content=b"<x/>", headers={"content-type": "application/xml"})
    assert xml.status_code == 415
    assert httpx.get(f"{mlflow_server.url}/ping").status_code == 200


@pytest.fixture(scope="module")
def torchserve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import shutil

    from course_pkg.servers.torchserve import TorchServeServer, archive_digits

    if shutil.which("java") is None:  # the machine image ships Java 17 (FIELD-NOTES)
        pytest.fail("TorchServe needs Java 11+ and none is installed")
    store = tmp_path_factory.mktemp("model-store")
    archive_digits(store, version="1.0", seed=7)
    archive_digits(store, version="2.0", seed=8)
    # pinned like the benchmarks pin it: the prefix must reach the Java server and its workers
    with TorchServeServer(store, ["digits.mar"], command_prefix=["taskset", "-c", "0"]) as server:
        yield server
    assert not list(server.workdir.glob("*")), "the temporary directory was not removed"


def test_torchserve_serves_versions_and_metrics(torchserve: Any) -> None:
    from course_pkg.datasets.digits import image_to_features, load_digit_images

    images = load_digit_images()[:20]
    bodies = [{"pixels": image_to_features(image.path)[0].tolist()} for image in images]
    first = [torchserve.predict("digits", body) for body in bodies]
    accuracy = sum(p["label"] == image.label for p, image in zip(first, images, strict=True))
    assert accuracy >= 17, accuracy  # a real model, not a constant
    assert all(abs(sum(p["probabilities"]) - 1) < 1e-4 for p in first)

    registered = torchserve.register("digits_v2.mar")
    assert "Version: 2.0 registered" in registered["status"]
    torchserve.set_default("digits", "2.0")
    assert {m["modelVersion"] for m in torchserve.describe("digits")} == {"1.0", "2.0"}
    assert torchserve.default_version("digits") == "2.0"
    assert torchserve.predict("digits", bodies[0]) == torchserve.predict(
        "digits", bodies[0], version="2.0"
    )
    assert torchserve.predict("digits", bodies[0], version="1.0") == first[0]
    torchserve.scale("digits", 2, version="2.0")
    described = {m["modelVersion"]: m for m in torchserve.describe("digits")}
    assert len(described["2.0"]["workers"]) == 2

    metrics = torchserve.metrics()
    counted = [
        line for line in metrics.splitlines() if line.startswith("ts_inference_requests_total")
    ]
    assert any('model_version="1.0"' in line for line in counted), counted


def test_torchserve_and_every_process_it_starts_run_on_the_pinned_cpu(torchserve: Any) -> None:
    group = torchserve.process.pid  # started in its own session: the group id is its pid
    allowed = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines())
            if os.getpgid(int(status.parent.name)) == group:
                allowed[fields["Name"]] = fields["Cpus_allowed_list"].strip()
        except (OSError, ValueError):  # exited meanwhile, or a line without a tab
            continue
    assert "java" in allowed and any(n.startswith("python") for n in allowed), allowed
    assert set(allowed.values()) == {"0"}, allowed


def test_a_second_torchserve_starts_beside_the_first_and_all_listen_on_loopback(
    torchserve: Any,
) -> None:
    """Two TorchServes on one machine (two notebooks, a test and a benchmark): every port,
    gRPC's included (TorchServe's default is a fixed 7070/7071), is a free one on 127.0.0.1."""
    import psutil

    from course_pkg.servers.torchserve import TorchServeServer

    with TorchServeServer(torchserve.model_store, ["digits.mar"]) as second:
        assert second.predict("digits", {"pixels": [0.0] * 64})["label"] in range(10)
        for server in (torchserve, second):
            group = server.process.pid
            listening = {
                (c.laddr.ip, c.laddr.port)
                for c in psutil.net_connections(kind="inet")
                if c.status == psutil.CONN_LISTEN and c.pid and _in_group(c.pid, group)
            }
            assert len(listening) >= 5, listening  # inference, management, metrics, 2 × gRPC
            # Java reports IPv4 sockets as IPv4-mapped IPv6 (::ffff:127.0.0.1)
            assert {_ipv4(ip) for ip, _ in listening} == {"127.0.0.1"}, listening


def _ipv4(ip: str) -> str:
    import ipaddress

    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def _in_group(pid: int, group: int) -> bool:
    try:
        return os.getpgid(pid) == group
    except OSError:
        return False


def test_torchserve_refuses_bad_input_without_dying(torchserve: Any) -> None:
    bad = httpx.post(f"{torchserve.url}/predictions/digits", json={"pixels": [1, 2, 3]})
    assert bad.status_code >= 400  # the handler's ValueError; TorchServe answers an error
    missing = httpx.post(f"{torchserve.url}/predictions/nope", json={"pixels": []})
    assert missing.status_code == 404
    assert httpx.get(f"{torchserve.url}/ping").json()["status"] == "Healthy"


def test_savedmodel_behind_tf_serving_rest_and_the_same_request_on_our_server(
    model_packages: dict[str, Path], tmp_path: Path
) -> None:
    from course_pkg.artifacts.deep import saved_model_signatures
    from course_pkg.datasets.digits import image_to_features, load_digit_images
    from course_pkg.servers.tensorflow import (
        TFServingProcess,
        export_digits_savedmodel,
        tf_serving_docker_command,
    )

    saved = export_digits_savedmodel(tmp_path / "digits_savedmodel")
    signature = saved_model_signatures(saved)["serving_default"]
    assert signature["inputs"] == {"pixels": ("float32", [None, 64])}
    command = tf_serving_docker_command(saved, "digits")
    assert f"{saved}:/models/digits/1:ro" in command and "127.0.0.1:8501:8501" in command

    images = load_digit_images()[:20]
    request = {"instances": [image_to_features(i.path)[0].tolist() for i in images]}
    with TFServingProcess(saved, "digits") as tf_rest:
        status = httpx.get(f"{tf_rest.url}/v1/models/digits").json()
        assert status["model_version_status"][0]["state"] == "AVAILABLE"
        meta = httpx.get(f"{tf_rest.url}/v1/models/digits/metadata").json()
        inputs = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]
        assert inputs["pixels"]["dtype"] == "DT_FLOAT"
        answer = httpx.post(f"{tf_rest.url}/v1/models/digits:predict", json=request)
        pinned = httpx.post(f"{tf_rest.url}/v1/models/digits/versions/1:predict", json=request)
        columnar = httpx.post(
            f"{tf_rest.url}/v1/models/digits:predict",
            json={"inputs": {"pixels": request["instances"][:2]}},
        )
        bad = httpx.post(f"{tf_rest.url}/v1/models/digits:predict", json={"instances": [[1, 2]]})
        unknown = httpx.post(f"{tf_rest.url}/v1/models/nope:predict", json=request)
    tf_labels = [max(range(10), key=row.__getitem__) for row in answer.json()["predictions"]]
    assert sum(p == i.label for p, i in zip(tf_labels, images, strict=True)) >= 18
    assert pinned.json() == answer.json()
    assert columnar.json()["outputs"] == answer.json()["predictions"][:2]
    assert bad.status_code == 400 and "shape [batch, 64]" in bad.json()["error"]
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "Servable not found for request: Latest(nope)"}

    # the same request, unchanged, against the reference server's TF Serving route (ONNX)
    with ServerProcess([model_packages["digits"]]) as ours:
        mine = httpx.post(f"{ours.url}/v1/models/digits:predict", json=request).json()
    our_labels = [p["label"] for p in mine["predictions"]]
    assert sum(p == i.label for p, i in zip(our_labels, images, strict=True)) >= 18
