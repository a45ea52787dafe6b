"""scikit-learn ``predict_proba`` vs onnxruntime on the same churn pipelines, side by side.

    .venv/bin/python benchmarks/onnx_bench.py [--estimators logreg,random_forest,...] [--seconds 1]

For each estimator: file sizes (skops vs ONNX), single-row latency (median and p99 over
repeated one-row calls from a DataFrame, the way a server calls it) and throughput in rows/s
at batch sizes 1, 64, 4096 and 65536, with the ratio onnxruntime / sklearn. onnxruntime runs
with the OnnxPredictor defaults (one intra-op thread, validation off: this measures the
runtimes, not our input checks); scikit-learn runs single-threaded too. Figures go to
docs/ONNX.md and notebook 03.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")  # scikit-learn / numpy: one thread, like ORT

BATCHES = (1, 64, 4096, 65536)


def _latencies(fn: Callable[[], Any], seconds: float, max_calls: int) -> list[float]:
    fn()  # warm-up
    times: list[float] = []
    stop = time.perf_counter() + seconds
    while len(times) < max_calls and (time.perf_counter() < stop or len(times) < 5):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _rows_per_s(fn: Callable[[], Any], rows: int, seconds: float) -> float:
    times = _latencies(fn, seconds, max_calls=10_000)
    return rows / statistics.median(times)


def bench(kind: str, seconds: float) -> list[dict[str, Any]]:
    from course_pkg.artifacts.formats import save_model
    from course_pkg.onnx_export import OnnxPredictor, export_sklearn
    from course_pkg.training import train_churn

    trained = train_churn(kind)
    pipeline, x_test = trained.pipeline, trained.x_test
    work = Path(tempfile.mkdtemp(prefix="onnx-bench-"))
    onnx_path = work / "model.onnx"
    onnx_path.write_bytes(export_sklearn(pipeline, x_test).SerializeToString())
    skops_path = save_model(pipeline, work / "model.skops", "skops")
    predictor = OnnxPredictor(onnx_path)
    big = x_test.sample(n=max(BATCHES), replace=True, random_state=0).reset_index(drop=True)
    rows: list[dict[str, Any]] = []

    one = x_test.head(1)
    sk_ms = np.array(_latencies(lambda: pipeline.predict_proba(one), seconds, 20_000)) * 1000
    ort_ms = (
        np.array(_latencies(lambda: predictor.predict_proba(one, validate=False), seconds, 20_000))
        * 1000
    )
    rows.append(
        {
            "estimator": kind,
            "metric": "1-row latency ms (median / p99)",
            "sklearn": f"{np.median(sk_ms):.3f} / {np.percentile(sk_ms, 99):.3f}",
            "onnxruntime": f"{np.median(ort_ms):.3f} / {np.percentile(ort_ms, 99):.3f}",
            "speed-up": f"{np.median(sk_ms) / np.median(ort_ms):.1f}×",
        }
    )
    for batch in BATCHES:
        frame = big.head(batch)
        sk = _rows_per_s(functools.partial(pipeline.predict_proba, frame), batch, seconds)
        ort = _rows_per_s(
            functools.partial(predictor.predict_proba, frame, validate=False), batch, seconds
        )
        rows.append(
            {
                "estimator": kind,
                "metric": f"rows/s @ batch {batch}",
                "sklearn": f"{sk:,.0f}",
                "onnxruntime": f"{ort:,.0f}",
                "speed-up": f"{ort / sk:.1f}×",
            }
        )
    rows.append(
        {
            "estimator": kind,
            "metric": "file size KB",
            "sklearn": f"{skops_path.stat().st_size / 1024:,.0f} (skops)",
            "onnxruntime": f"{onnx_path.stat().st_size / 1024:,.0f} (onnx)",
            "speed-up": "",
        }
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimators", default="logreg,random_forest,hist_gradient_boosting")
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()

    results: list[dict[str, Any]] = []
    for kind in args.estimators.split(","):
        results += bench(kind.strip(), args.seconds)
    print(pd.DataFrame(results).set_index(["estimator", "metric"]).to_string())


if __name__ == "__main__":
    main()
