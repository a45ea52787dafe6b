"""Micro-batching on vs off: the same server and model, one-row requests, side by side.

    .venv/bin/python benchmarks/microbatch_bench.py [--seconds 5] [--connections 8,64]

Needs ``wrk`` (``apt-get install wrk``). Two models, because the gain depends on how a
model call's cost splits into a fixed part and a per-row part:

- ``churn`` (the course's logistic regression): ~26 µs per call, ~1 µs per extra row — the
  model is a small part of a request, so batching saves little;
- ``digits-mlp`` (a 64→1024→1024→10 network): ~230 µs for one row, ~16 µs per row in a
  64-row batch — the model dominates, as it does for real neural networks.

Each server runs one worker pinned to CPU 1, wrk one thread on CPU 0, everything on
127.0.0.1, ``--seconds`` per point. Batching: ``COURSE_SERVE_BATCH_MAX_ROWS`` (default 64)
and ``COURSE_SERVE_BATCH_MAX_WAIT_MS`` (default 0: adaptive, see serving.batching).
Figures go to docs/SERVING.md.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from serve_bench import PIN_SERVER, serve_command, wrk, wrk_arguments  # noqa: E402


def build_models(work: Path) -> dict[str, tuple[Path, str, dict[str, Any]]]:
    """{label: (package, model name, one-row native request body)}."""
    from course_pkg.datasets.digits import image_to_features, load_digit_images
    from course_pkg.training import package_churn, package_digits, train_churn

    churn = package_churn(work / "churn").path
    record = json.loads(train_churn().x_test.head(1).to_json(orient="records"))[0]
    mlp = package_digits(work / "digits-mlp", estimator="mlp").path
    pixels = image_to_features(load_digit_images()[0].path)[0].tolist()
    return {
        "churn": (churn, "churn", {"records": [record]}),
        "digits-mlp": (mlp, "digits", {"records": [{"pixels": pixels}]}),
    }


def main() -> None:
    from course_pkg.serving.process import ServerProcess, free_port

    parser, parse = wrk_arguments(__doc__, "8,64")
    parser.add_argument("--max-rows", type=int, default=64)
    parser.add_argument("--max-wait-ms", type=float, default=0.0)
    args, connections = parse()
    work = Path(tempfile.mkdtemp(prefix="microbatch-bench-"))
    models = build_models(work)
    bin_dir = Path(sys.executable).parent
    modes = {
        "off": {},
        "on": {
            "COURSE_SERVE_BATCH_MAX_ROWS": str(args.max_rows),
            "COURSE_SERVE_BATCH_MAX_WAIT_MS": str(args.max_wait_ms),
        },
    }
    results: dict[tuple[str, str, int], dict[str, float]] = {}
    for model, (package, name, body) in models.items():
        for mode, extra in modes.items():
            port = free_port()
            command = ["taskset", "-c", PIN_SERVER, *serve_command(package, port)]
            env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", **extra}
            with ServerProcess([], port=port, command=command, env=env) as server:
                for c in connections:
                    url = f"{server.url}/v1/models/{name}/predict"
                    results[(model, mode, c)] = wrk(url, body, c, args.seconds, work)
    print(
        f"micro-batching: max {args.max_rows} rows, max wait {args.max_wait_ms:g} ms; "
        f"{args.seconds:g} s per point\n"
    )
    print(f"{'model':<12}{'batching':>9}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for (model, mode, c), r in results.items():
        print(
            f"{model:<12}{mode:>9}{c:>6}{r['req_s']:>10,.0f}{r['p50_ms']:>9.2f}"
            f"{r['p99_ms']:>9.2f}"
            + (f"   non-2xx {r['errors']:.0f}" if r["errors"] or r["socket_errors"] else "")
        )
    print("\non / off:")
    for model in models:
        for c in connections:
            on, off = results[(model, "on", c)], results[(model, "off", c)]
            print(
                f"  {model:<11} {c:>2} conns: req/s {on['req_s'] / off['req_s']:.2f}×, "
                f"p50 {on['p50_ms'] / off['p50_ms']:.2f}×, p99 {on['p99_ms'] / off['p99_ms']:.2f}×"
            )


if __name__ == "__main__":
    main()
