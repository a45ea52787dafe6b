"""Our server against its peers, the same ONNX churn model behind each, side by side.

    make peers-venv                                   # once: build/peers-venv from peers.in
    .venv/bin/python benchmarks/peers_bench.py [--seconds 5] [--connections 1,8,64]
        [--only ours,minimal,litserve,bentoml,ray,mlflow,torchserve] [--workers-scale]

Peers: ours (``course-pkg serve``, validating, counting and logging every request), a
minimal FastAPI + onnxruntime handler (no validation, metrics or logs: the floor), LitServe,
BentoML and Ray Serve (from ``build/peers-venv``, ``benchmarks/_peer_apps.py``), ``mlflow
models serve`` and TorchServe (from the course venv; TorchServe runs the ONNX file through
onnxruntime in a function handler, MLflow the same fitted pipeline as its sklearn pyfunc —
MLflow's ``onnx`` flavour would go through pandas the same way).

Same conditions for all: one worker/replica each, the server and everything it starts
pinned to CPU 1 (``taskset``, inherited by child processes: TorchServe's Java frontend and
Python worker, Ray's raylet and replica, BentoML's worker), wrk on CPU 0, one row per request,
127.0.0.1 only, bounded in time (``--seconds`` per point). ``--workers-scale`` adds ours with
``--workers 1`` and ``--workers 2`` unpinned on both cores (wrk then shares them).
Prints req/s, p50, p99 and non-2xx per point, then each peer's ratio to ours. Figures go to
docs/SERVING.md — from a quiet machine: on a shared one they measure the neighbours.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from serve_bench import PIN_SERVER, serve_command, wrk, wrk_arguments  # noqa: E402

ROOT = HERE.parent
PEERS_PYTHON = ROOT / "build" / "peers-venv" / "bin" / "python"
PIN = ["taskset", "-c", PIN_SERVER]
QUIET = {"RAY_USAGE_STATS_ENABLED": "0", "BENTOML_DO_NOT_TRACK": "true", "DO_NOT_TRACK": "1"}

# TorchServe: a function handler (no torch model) that runs the package's ONNX file.
TORCHSERVE_HANDLER = """
import json, os
_model = None

def handle(data, context):
    global _model
    if _model is None:
        import sys
        sys.path.insert(0, context.system_properties["model_dir"])
        from peer_model import Model
        _model = Model(os.path.join(context.system_properties["model_dir"], "model.onnx"))
    if data is None:
        return None
    out = []
    for request in data:
        body = request.get("body") or request.get("data")
        if isinstance(body, (bytes, bytearray)):
            body = json.loads(body)
        out.append({"predictions": _model.predict(body["records"])})
    return out
"""


def peer(name: str, port: int, model: Path, **options: Any) -> Any:
    """A peer from _peer_apps.py, run by the peers' venv, pinned to the server CPU."""
    from course_pkg.serving.process import ServerProcess

    class PeerProcess(ServerProcess):
        """Stopped as a process group: LitServe's and BentoML's workers are its children."""

        def stop(self, timeout: float = 30.0) -> int:
            if self.process is not None and self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGTERM)
            return super().stop(timeout)

    command = [*PIN, str(PEERS_PYTHON), str(HERE / "_peer_apps.py"), name, str(port)]
    env = {**QUIET, "PEER_MODEL": str(model), "PYTHONPATH": str(HERE)}
    return PeerProcess([], port=port, command=command, env=env, **options)


def torchserve_store(work: Path, model: Path) -> Path:
    from course_pkg.servers.torchserve import archive

    handler = work / "churn_handler.py"
    handler.write_text(TORCHSERVE_HANDLER)
    # the archive carries the ONNX file and the same Model class the other peers use
    extra = work / "ts-extra"
    extra.mkdir(exist_ok=True)
    (extra / "peer_model.py").write_text((HERE / "_peer_apps.py").read_text())
    store = work / "model-store"
    archive(
        model, handler, store, name="churn", version="1.0", extra_files=[extra / "peer_model.py"]
    )
    return store


def main() -> None:
    from course_pkg.servers.mlflow_serve import MlflowServer
    from course_pkg.servers.torchserve import TorchServeServer
    from course_pkg.serving.process import ServerProcess, free_port

    parser, parse = wrk_arguments(__doc__, "1,8,64")
    parser.add_argument("--only", default="ours,minimal,litserve,bentoml,ray,mlflow,torchserve")
    parser.add_argument("--workers-scale", action="store_true")
    args, connections = parse()
    if not PEERS_PYTHON.exists():
        sys.exit(f"no {PEERS_PYTHON}: run `make peers-venv` first (benchmarks/peers.in)")
    work = Path(tempfile.mkdtemp(prefix="peers-bench-"))
    from serve_bench import build_models

    package, mlflow_dir, native_body, split_body = build_models(work)
    model = package / "model.onnx"
    bin_dir = Path(sys.executable).parent
    course_env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}

    def ours(workers: int = 1, pin: bool = True) -> Callable[[], ServerProcess]:
        def start() -> ServerProcess:
            port = free_port()
            command = [*(PIN if pin else []), *serve_command(package, port)]
            command += ["--workers", str(workers)]
            return ServerProcess([], port=port, command=command, env=course_env)

        return start

    def peer_of(name: str, **options: Any) -> Callable[[], ServerProcess]:
        return lambda: peer(name, free_port(), model, **options)

    targets: dict[str, tuple[Callable[[], Any], str, dict[str, Any]]] = {
        "ours": (ours(), "/v1/models/churn/predict", native_body),
        "minimal": (peer_of("minimal", ready_path="/health"), "/predict", native_body),
        "litserve": (peer_of("litserve", ready_path="/health"), "/predict", native_body),
        "bentoml": (
            peer_of("bentoml", ready_path="/readyz", startup_timeout=180),
            "/predict",
            native_body,
        ),
        "ray": (
            peer_of("ray", ready_path="/predict", ready_any_status=True, startup_timeout=300),
            "/predict",
            native_body,
        ),
        "mlflow": (
            lambda: MlflowServer(mlflow_dir, command_prefix=PIN),
            "/invocations",
            split_body,
        ),
        "torchserve": (
            lambda: TorchServeServer(
                torchserve_store(work, model), ["churn.mar"], command_prefix=PIN
            ),
            "/predictions/churn",
            native_body,
        ),
    }
    chosen = [name for name in args.only.split(",") if name]
    unknown = set(chosen) - set(targets)
    if unknown:
        sys.exit(f"unknown peer(s) {sorted(unknown)}; choose from {sorted(targets)}")
    if args.workers_scale:
        targets["ours --workers 1 (2 cores)"] = (ours(1, pin=False), *targets["ours"][1:])
        targets["ours --workers 2 (2 cores)"] = (ours(2, pin=False), *targets["ours"][1:])
        chosen += ["ours --workers 1 (2 cores)", "ours --workers 2 (2 cores)"]

    results: dict[tuple[str, int], dict[str, float]] = {}
    failed: dict[str, str] = {}
    for name in chosen:
        start, path, body = targets[name]
        try:
            with start() as server:
                check(server.url + path, body)
                for c in connections:
                    results[(name, c)] = wrk(server.url + path, body, c, args.seconds, work)
        except Exception as error:  # one peer failing must not lose the others' figures
            failed[name] = f"{type(error).__name__}: {str(error)[:300]}"
    report(chosen, connections, results, failed)


def check(url: str, body: dict[str, Any], timeout: float = 120.0) -> None:
    """Predict once before measuring (Ray's proxy answers before its replica is deployed);
    a peer that keeps answering errors is reported, not benchmarked."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = httpx.post(url, json=body, timeout=30)
            if answer.status_code == 200:
                return
            problem = f"{answer.status_code}: {answer.text[:200]}"
        except httpx.HTTPError as error:
            problem = f"{type(error).__name__}: {error}"
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} answered {problem}")
        time.sleep(0.5)


def report(
    chosen: list[str],
    connections: list[int],
    results: dict[tuple[str, int], dict[str, float]],
    failed: dict[str, str],
) -> None:
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} cores")
    print(f"{'server':<28}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for (name, c), r in results.items():
        print(
            f"{name:<28}{c:>6}{r['req_s']:>10,.0f}{r['p50_ms']:>9.2f}"
            f"{r['p99_ms']:>9.2f}{r['errors']:>9.0f}"
        )
    for name, reason in failed.items():
        print(f"{name:<28} FAILED: {reason}")
    if not any(name == "ours" for name, _ in results):
        return
    print("\nours / peer (req/s; >1: ours is faster):")
    for c in connections:
        base = results[("ours", c)]["req_s"]
        ratios = [
            f"{name} {base / results[(name, c)]['req_s']:.2f}x"
            for name in chosen
            if name != "ours" and (name, c) in results and results[(name, c)]["req_s"] > 0
        ]
        print(f"  {c:>2} conns: " + ", ".join(ratios))


if __name__ == "__main__":
    main()
