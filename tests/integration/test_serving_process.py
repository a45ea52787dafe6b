"""The reference server as a real uvicorn process on 127.0.0.1, driven by real clients:
httpx, MLflow's own scoring client, tritonclient[http], schemathesis; SIGTERM mid-request."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from course_pkg.datasets.digits import load_digit_images
from course_pkg.serving.process import ServerProcess
from course_pkg.training import train_churn

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def server(model_packages: dict[str, Path]) -> Iterator[ServerProcess]:
    with ServerProcess([model_packages["churn"], model_packages["digits"]]) as running:
        yield running
    assert running.returncode == 0, running.output()


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return train_churn().x_test.head(20)


def test_native_csv_and_image(server: ServerProcess, frame: pd.DataFrame) -> None:
    records = json.loads(frame.to_json(orient="records"))
    response = httpx.post(f"{server.url}/v1/models/churn/predict", json={"records": records})
    assert response.status_code == 200 and len(response.json()["predictions"]) == 20
    csv = httpx.post(
        f"{server.url}/v1/models/churn/predict",
        content=frame.to_csv(index=False),
        headers={"content-type": "text/csv"},
    )
    out = pd.read_csv(io.StringIO(csv.text))
    assert list(out["prediction"]) == [p["label"] for p in response.json()["predictions"]]
    image = load_digit_images()[0]
    digit = httpx.post(
        f"{server.url}/v1/models/digits/predict",
        files={"file": (image.path.name, image.path.read_bytes(), "image/png")},
    )
    assert digit.json()["predictions"][0]["label"] == image.label


@pytest.mark.filterwarnings(
    "ignore:.*Any type hint is inferred as AnyType:UserWarning"
)  # mlflow import
def test_mlflow_scoring_client(server: ServerProcess, frame: pd.DataFrame) -> None:
    """MLflow's own client (what `mlflow models predict`/deployments use) against our server."""
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    host, port = server.url.removeprefix("http://").split(":")
    client = ScoringServerClient(host, int(port))
    client.wait_server_ready(timeout=10)
    assert client.get_version() == "3.17.2"
    result = client.invoke(frame)  # the client serialises the DataFrame (dataframe_split)
    native = httpx.post(
        f"{server.url}/v1/models/churn/predict",
        json={"records": json.loads(frame.to_json(orient="records"))},
    ).json()
    assert result["predictions"] == [p["label"] for p in native["predictions"]]
    with pytest.raises(Exception, match="error code 400"):
        client.invoke(frame.assign(contract="weekly"))


def test_tritonclient(server: ServerProcess, frame: pd.DataFrame) -> None:
    """tritonclient's HTTP client, binary tensor extension on (its default)."""
    import tritonclient.http as triton

    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("churn")
        metadata = client.get_model_metadata("churn")
        inputs = []
        for spec in metadata["inputs"]:
            values = frame[spec["name"]].to_numpy()
            dtype = {"BYTES": object, "INT64": np.int64, "FP64": np.float64}[spec["datatype"]]
            tensor = triton.InferInput(spec["name"], [len(frame), 1], spec["datatype"])
            tensor.set_data_from_numpy(values.astype(dtype).reshape(-1, 1))
            inputs.append(tensor)
        outputs = [
            triton.InferRequestedOutput("label"),
            triton.InferRequestedOutput("probabilities"),
        ]
        result = client.infer("churn", inputs, outputs=outputs)
        labels, proba = result.as_numpy("label"), result.as_numpy("probabilities")
        assert proba.shape == (len(frame), 2) and list(proba.argmax(1)) == list(labels)
        pixels = triton.InferInput("pixels", [2, 64], "FP32")
        pixels.set_data_from_numpy(np.zeros((2, 64), dtype=np.float32), binary_data=False)
        digits = client.infer("digits", [pixels])
        assert digits.as_numpy("probabilities").shape == (2, 10)
        with pytest.raises(Exception, match="not served here"):
            client.get_model_metadata("nope")
    finally:
        client.close()


def test_schemathesis_finds_no_server_error(server: ServerProcess) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(HERE / "schemathesis.toml"),
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "25",
            "--seed",
            "20251125",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout.split("SUMMARY")[-1]


def test_sigterm_finishes_the_request_in_flight(model_packages: dict[str, Path]) -> None:
    big = train_churn().x_test.sample(n=300_000, replace=True, random_state=0)
    body = big.to_csv(index=False).encode()
    result: dict[str, Any] = {}
    with ServerProcess([model_packages["churn"]]) as running:

        def call() -> None:
            started = time.monotonic()
            response = httpx.post(
                f"{running.url}/v1/models/churn/predict",
                content=body,
                headers={"content-type": "text/csv"},
                timeout=120,
            )
            result.update(
                status=response.status_code,
                lines=response.text.count("\n"),
                started=started,
                finished=time.monotonic(),
            )

        worker = threading.Thread(target=call)
        worker.start()
        time.sleep(0.5)
        assert running.process is not None
        running.process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        worker.join(120)
        code = running.process.wait(60)
        with pytest.raises(httpx.ConnectError):  # no longer accepting
            httpx.get(f"{running.url}/health/live", timeout=2)
    assert result["finished"] > sent, "the request ended before SIGTERM: make it bigger"
    assert result["status"] == 200 and result["lines"] == len(big) + 1  # header + every row
    assert code == 0, running.output()


def test_two_workers_one_metrics_view(model_packages: dict[str, Path]) -> None:
    with ServerProcess([model_packages["churn"]], workers=2) as running:
        row = json.loads(train_churn().x_test.head(1).to_json(orient="records"))
        with httpx.Client() as client:  # new connections spread over both workers
            statuses = [
                client.post(
                    f"{running.url}/v1/models/churn/predict",
                    json={"records": row},
                    headers={"connection": "close"},
                ).status_code
                for _ in range(40)
            ]
        assert statuses == [200] * 40  # no worker answers before its model is loaded
        text = httpx.get(f"{running.url}/metrics").text
    ok = sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("course_requests_total") and 'status="200"' in line and "predict" in line
    )
    assert ok == 40  # every worker's count, summed by the multiprocess collector
    assert running.returncode == 0


def test_the_platform_port_is_honoured_and_ours_wins(model_packages: dict[str, Path]) -> None:
    """``course-pkg serve`` without --port: PORT (Cloud Run, Spaces, Heroku), unless
    COURSE_SERVE_PORT is set; the container healthcheck asks the same port."""
    from course_pkg.serving.process import free_port

    platform, ours = free_port(), free_port()
    command = [sys.executable, "-m", "course_pkg", "serve", str(model_packages["churn"])]
    command += ["--host", "127.0.0.1", "--log-level", "warning"]
    env = {"PORT": str(platform), "COURSE_SERVE_PORT": ""}
    with ServerProcess([], port=platform, command=command, env=env) as running:
        assert httpx.get(f"{running.url}/health/ready").status_code == 200
        check = subprocess.run(
            [sys.executable, "-m", "course_pkg.serving.healthcheck"],
            env={**running.env, "COURSE_SERVE_PORT": ""},
            timeout=30,
        )
        assert check.returncode == 0  # the image's HEALTHCHECK finds the server on PORT
    env = {"PORT": str(platform), "COURSE_SERVE_PORT": str(ours)}
    with ServerProcess([], port=ours, command=command, env=env) as running:
        assert httpx.get(f"{running.url}/health/ready").status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{platform}/health/live", timeout=2)
