"""Model servers side by side in one run: ours, MLflow serve, TorchServe, a SavedModel behind
TF Serving's REST API — startup time and one-row throughput on comparable small models.

    .venv/bin/python benchmarks/model_servers_bench.py [--seconds 5] [--connections 1,8]

Needs ``wrk`` (``apt-get install wrk``) and Java 11+ (TorchServe). Each server is pinned to
CPU 1 (``taskset``, inherited by every process it starts: TorchServe's Java frontend and its
Python worker, MLflow's uvicorn), wrk to CPU 0; everything on 127.0.0.1; one worker each.

Comparable, not identical: the churn rows compare our ONNX package with MLflow's pyfunc of the
*same* fitted pipeline; the digits rows compare three small networks/classifiers on the same
64 pixels in each server's native format (our ONNX logistic regression, a TorchScript MLP, a
Keras MLP SavedModel) — the model is ~20-60 µs of each request, the server is the rest.
Startup: from process start until the server answers its readiness check (models loaded).
Figures go to docs/MODEL_SERVERS.md.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from serve_bench import PIN_SERVER, wrk, wrk_arguments  # noqa: E402

PIN = ["taskset", "-c", PIN_SERVER]


def main() -> None:
    from course_pkg.datasets.digits import image_to_features, load_digit_images
    from course_pkg.servers.mlflow_serve import MlflowServer, save_churn_mlflow
    from course_pkg.servers.tensorflow import TFServingProcess, export_digits_savedmodel
    from course_pkg.servers.torchserve import TorchServeServer, archive_digits
    from course_pkg.serving.process import ServerProcess
    from course_pkg.training import package_churn, package_digits, train_churn

    _, parse = wrk_arguments(__doc__, "1,8")
    args, connections = parse()
    work = Path(tempfile.mkdtemp(prefix="model-servers-bench-"))

    churn = package_churn(work / "churn").path
    mlflow_dir = save_churn_mlflow(work / "mlflow-churn", churn)
    digits = package_digits(work / "digits").path
    saved_model = export_digits_savedmodel(work / "digits_savedmodel")
    store = work / "model-store"
    archive_digits(store)
    row = json.loads(train_churn().x_test.head(1).to_json(orient="records"))[0]
    split = {"dataframe_split": {"columns": list(row), "data": [list(row.values())]}}
    pixels = image_to_features(load_digit_images()[0].path)[0].tolist()

    def ours(package: Path) -> Callable[[], ServerProcess]:
        return lambda: ServerProcess([package], command_prefix=PIN)

    targets: list[tuple[str, str, str, Callable[[], ServerProcess], str, dict[str, Any]]] = [
        ("ours (ONNX)", "churn", "MLflow /invocations", ours(churn), "/invocations", split),
        (
            "mlflow models serve",
            "churn",
            "MLflow /invocations",
            lambda: MlflowServer(mlflow_dir, command_prefix=PIN),
            "/invocations",
            split,
        ),
        (
            "ours (ONNX)",
            "digits",
            "TF Serving :predict",
            ours(digits),
            "/v1/models/digits:predict",
            {"instances": [pixels]},
        ),
        (
            "SavedModel, TF Serving REST",
            "digits",
            "TF Serving :predict",
            lambda: TFServingProcess(saved_model, "digits", command_prefix=PIN),
            "/v1/models/digits:predict",
            {"instances": [pixels]},
        ),
        (
            "TorchServe 0.12",
            "digits",
            "TorchServe /predictions",
            lambda: TorchServeServer(store, ["digits.mar"], command_prefix=PIN),
            "/predictions/digits",
            {"pixels": pixels},
        ),
    ]
    results = []
    for server_name, model, protocol, start, path, body in targets:
        began = time.perf_counter()
        with start() as server:
            startup = time.perf_counter() - began
            for c in connections:
                measured = wrk(server.url + path, body, c, args.seconds, work)
                results.append((server_name, model, protocol, startup, c, measured))
    print(
        f"{'server':<29}{'model':<8}{'protocol':<25}{'start s':>8}{'conns':>6}"
        f"{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}"
    )
    for server_name, model, protocol, startup, c, r in results:
        errors = f"  non-2xx {r['errors']:.0f}" if r["errors"] or r["socket_errors"] else ""
        print(
            f"{server_name:<29}{model:<8}{protocol:<25}{startup:>8.1f}{c:>6}"
            f"{r['req_s']:>9,.0f}{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}{errors}"
        )
    rps = {(name, model, c): r["req_s"] for name, model, _, _, c, r in results}
    print("\nours / theirs (req/s, same model or same pixels):")
    for c in connections:
        print(
            f"  {c:>2} conns: churn  ours / mlflow serve = "
            f"{rps[('ours (ONNX)', 'churn', c)] / rps[('mlflow models serve', 'churn', c)]:.1f}×"
        )
        for other in ("SavedModel, TF Serving REST", "TorchServe 0.12"):
            ratio = rps[("ours (ONNX)", "digits", c)] / rps[(other, "digits", c)]
            print(f"  {c:>2} conns: digits ours / {other} = {ratio:.1f}×")


if __name__ == "__main__":
    main()
