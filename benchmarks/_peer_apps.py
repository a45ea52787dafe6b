"""The peers of peers_bench.py: the same ONNX churn model behind each framework's own idiom.

Run with the peers' venv (build/peers-venv, from benchmarks/peers.in), never imported by
course_pkg. Every peer reads ``PEER_MODEL`` (the package's model.onnx), takes the same body
``{"records": [row]}`` and answers label + probabilities, with no validation, metrics or
logs beyond each framework's defaults:

    python _peer_apps.py minimal|litserve|bentoml|ray PORT

All bind 127.0.0.1 only; telemetry is off (BentoML, Ray usage stats).
"""

import os
import sys
from typing import Any

import numpy as np
import onnxruntime as ort

FEEDS = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}


class Model:
    """onnxruntime with one feed per input column, as the course's packages are exported."""

    def __init__(self, path: str) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.inputs = [(i.name, i.type) for i in self.session.get_inputs()]

    def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        feeds = {
            name: (
                np.array([r[name] for r in records], dtype=object)
                if kind == "tensor(string)"
                else np.asarray([r[name] for r in records], dtype=FEEDS[kind])
            ).reshape(-1, 1)
            for name, kind in self.inputs
        }
        labels, proba = self.session.run(None, feeds)[:2]
        if isinstance(proba, list):  # a ZipMap output: [{class: p}]
            proba = [list(p.values()) for p in proba]
        return [
            {"label": int(label), "probabilities": [float(p) for p in row]}
            for label, row in zip(labels.tolist(), np.asarray(proba).tolist(), strict=True)
        ]


def minimal() -> Any:
    """15 lines of FastAPI: read JSON, predict, answer (the floor any server is judged by)."""
    from fastapi import FastAPI, Request

    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})
    model = Model(os.environ["PEER_MODEL"])

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        body = await request.json()
        return {"predictions": model.predict(body["records"])}

    return app


def run_minimal(port: int) -> None:
    import uvicorn

    uvicorn.run(minimal(), host="127.0.0.1", port=port, access_log=False, log_level="warning")


try:  # LitServe's workers are spawned processes: its API class must be importable
    import litserve as ls
except ImportError:  # the TorchServe handler imports this file in the course venv
    ls = None

if ls is not None:

    class ChurnAPI(ls.LitAPI):  # type: ignore[misc]
        def setup(self, device: str) -> None:
            self.model = Model(os.environ["PEER_MODEL"])

        def decode_request(self, request: dict[str, Any]) -> list[dict[str, Any]]:
            return list(request["records"])

        def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return self.model.predict(records)

        def encode_response(self, output: list[dict[str, Any]]) -> dict[str, Any]:
            return {"predictions": output}


def run_litserve(port: int) -> None:
    server = ls.LitServer(ChurnAPI(), accelerator="cpu", workers_per_device=1)
    server.run(host="127.0.0.1", port=port, log_level="warning", generate_client_file=False)


BENTO_SERVICE = """
import os
import bentoml
from _peer_apps import Model

@bentoml.service(workers=1, traffic={"timeout": 30})
class Churn:
    def __init__(self) -> None:
        self.model = Model(os.environ["PEER_MODEL"])

    @bentoml.api
    def predict(self, records: list[dict]) -> dict:
        return {"predictions": self.model.predict(records)}
"""


def run_bentoml(port: int) -> None:
    import tempfile
    from pathlib import Path

    work = Path(tempfile.mkdtemp(prefix="bento-"))
    (work / "service.py").write_text(BENTO_SERVICE)
    env = {**os.environ, "PYTHONPATH": f"{Path(__file__).parent}{os.pathsep}{work}"}
    env["BENTOML_DO_NOT_TRACK"] = "true"
    bentoml = Path(sys.executable).parent / "bentoml"
    command = [str(bentoml), "serve", "service:Churn", "--working-dir", str(work)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    os.execve(command[0], command, env)  # bentoml is the process the benchmark stops


def run_ray(port: int) -> None:
    import tempfile
    import time

    import ray
    from ray import serve
    from starlette.requests import Request

    ray.init(
        address="local",  # a fresh instance: never join a cluster already running here
        _temp_dir=tempfile.mkdtemp(prefix="ray-peers-"),  # nor share its session directory
        num_cpus=1,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        configure_logging=False,
    )
    serve.start(http_options={"host": "127.0.0.1", "port": port})

    @serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 1})
    class Churn:
        def __init__(self) -> None:
            self.model = Model(os.environ["PEER_MODEL"])

        async def __call__(self, request: Request) -> dict[str, Any]:
            body = await request.json()
            return {"predictions": self.model.predict(body["records"])}

    serve.run(Churn.bind(), route_prefix="/predict")
    while True:  # serve.run returns once deployed; the benchmark stops this process
        time.sleep(3600)


if __name__ == "__main__":
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    peer, port = sys.argv[1], int(sys.argv[2])
    {"minimal": run_minimal, "litserve": run_litserve, "bentoml": run_bentoml, "ray": run_ray}[
        peer
    ](port)
