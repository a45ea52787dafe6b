"""Our server vs ``mlflow models serve`` on the same churn model, plus the HTTP floor.

    .venv/bin/python benchmarks/serve_bench.py [--seconds 5] [--connections 1,8,64]

Needs ``wrk`` (``apt-get install wrk``). Everything binds to 127.0.0.1. Each server runs one
worker pinned to CPU 1 (``taskset``); wrk runs one thread pinned to CPU 0, so the two do not
fight over a core. Same request for every server: one churn row as MLflow's
``{"dataframe_split": ...}`` JSON to ``/invocations`` (our server also answers its native
``/v1/models/churn/predict`` with ``{"records": [...]}``). Load is bounded: ``--seconds`` per
point (default 5), 1, 8 and 64 connections. Figures go to docs/SERVING.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PIN_SERVER, PIN_CLIENT = "1", "0"


def build_models(work: Path) -> tuple[Path, Path, dict[str, Any], dict[str, Any]]:
    """(our package, MLflow model dir, one record, the same as dataframe_split)."""
    from course_pkg.servers.mlflow_serve import save_churn_mlflow
    from course_pkg.training import package_churn, train_churn

    package = package_churn(work / "churn").path
    mlflow_dir = save_churn_mlflow(work / "mlflow-churn", package)
    record = json.loads(train_churn().x_test.head(1).to_json(orient="records"))[0]
    split = {"dataframe_split": {"columns": list(record), "data": [list(record.values())]}}
    return package, mlflow_dir, {"records": [record]}, split


def wrk(
    url: str, body: dict[str, Any], connections: int, seconds: float, work: Path
) -> dict[str, float]:
    script = work / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
    )
    done = subprocess.run(
        [
            "taskset",
            "-c",
            PIN_CLIENT,
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    out = done.stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: (.*)", out)
    return {
        "req_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "errors": float(errors.group(1)) if errors else 0.0,
        "socket_errors": 1.0 if socket else 0.0,
    }


def serve_command(package: Path, port: int) -> list[str]:
    """``course-pkg serve`` of one package, quiet (callers pin it to ``PIN_SERVER``)."""
    return [
        *(sys.executable, "-m", "course_pkg", "serve", str(package)),
        *("--port", str(port), "--log-level", "warning"),
    ]


def wrk_arguments(
    doc: str, connections: str
) -> tuple[argparse.ArgumentParser, Callable[[], tuple[argparse.Namespace, list[int]]]]:
    """The wrk benchmarks' shared options (``--seconds``, ``--connections``): the parser, to
    add more, and a function that parses and splits the connection counts."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", default=connections)

    def parse() -> tuple[argparse.Namespace, list[int]]:
        args = parser.parse_args()
        return args, [int(c) for c in args.connections.split(",")]

    return parser, parse


def main() -> None:
    from course_pkg.servers.mlflow_serve import MlflowServer
    from course_pkg.serving.process import ServerProcess, free_port

    _, parse = wrk_arguments(__doc__, "1,8,64")
    args, connections = parse()
    work = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    package, mlflow_dir, native_body, split_body = build_models(work)
    bin_dir = Path(sys.executable).parent
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}

    def pinned(argv: Callable[[int], list[str]], **options: Any) -> Callable[[], ServerProcess]:
        """A server factory: ``argv(port)`` pinned to the server CPU, on a free port."""

        def start() -> ServerProcess:
            port = free_port()
            command = ["taskset", "-c", PIN_SERVER, *argv(port)]
            return ServerProcess([], port=port, command=command, **{"env": env, **options})

        return start

    ours = pinned(lambda port: serve_command(package, port))

    def mlflow() -> ServerProcess:
        return MlflowServer(mlflow_dir, command_prefix=["taskset", "-c", PIN_SERVER])

    floor = pinned(
        lambda port: [
            sys.executable,
            "-m",
            "uvicorn",
            "_floor_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env={**env, "PYTHONPATH": str(HERE)},
        ready_path="/docs",
    )

    targets = [
        ("HTTP floor (FastAPI constant)", floor, "/floor", split_body),
        ("ours /invocations", ours, "/invocations", split_body),
        ("ours native /v1/…/predict", ours, "/v1/models/churn/predict", native_body),
        ("mlflow models serve", mlflow, "/invocations", split_body),
    ]
    results: dict[tuple[str, int], dict[str, float]] = {}
    for name, start, path, body in targets:
        with start() as server:
            for c in connections:
                results[(name, c)] = wrk(server.url + path, body, c, args.seconds, work)
    print(f"{'server':<32}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for (name, c), r in results.items():
        print(
            f"{name:<32}{c:>6}{r['req_s']:>10,.0f}{r['p50_ms']:>9.2f}"
            f"{r['p99_ms']:>9.2f}{r['errors']:>9.0f}"
        )
    print("\nratios (req/s):")
    for c in connections:
        rps = {name: results[(name, c)]["req_s"] for name, *_ in targets}
        ours, floor_rps = rps["ours /invocations"], rps["HTTP floor (FastAPI constant)"]
        print(
            f"  {c:>2} conns: ours / mlflow = {ours / rps['mlflow models serve']:.1f}×, "
            f"ours / floor = {ours / floor_rps:.2f}×, "
            f"native / floor = {rps['ours native /v1/…/predict'] / floor_rps:.2f}×"
        )


if __name__ == "__main__":
    main()
