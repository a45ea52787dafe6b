"""Batch scoring of the generated transactions: our scorer vs the read+infer floor vs naive.

    .venv/bin/python benchmarks/batch_bench.py [--rows 10000000] [--chunk-rows 65536]

Three ways to score the same rows with the same fraud model, each in its own process (so each
peak-memory figure is its own):

- **ours**: ``course_pkg.batch.score_file`` Parquet → Parquet: validation, rejects, all input
  columns written through, part files (resumable), merged output;
- **floor**: pyarrow reads the same Parquet file in the same batches and onnxruntime runs on
  them — nothing else (no validation, nothing written): the best a Python scorer can do;
- **naive**: ``pandas.read_csv(chunksize=...)`` on the CSV version of the file and
  scikit-learn ``predict_proba`` per chunk, appending to a CSV.

Prints rows/s, peak RSS and the ratios. Goal (issue #8): ours ≥ 0.8× the floor, memory flat.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

FLOOR = """
import json, sys, time
import numpy as np, pyarrow.parquet as pq
from course_pkg.onnx_export import OnnxPredictor
predictor = OnnxPredictor.from_package(sys.argv[1])
types = predictor.input_types
started = time.perf_counter(); rows = 0
for batch in pq.ParquetFile(sys.argv[2]).iter_batches(batch_size=int(sys.argv[3])):
    feeds = {}
    for name, kind in types.items():
        column = batch.column(name)
        if kind == "tensor(string)":
            feeds[name] = column.to_numpy(zero_copy_only=False).astype(object).reshape(-1, 1)
        else:
            feeds[name] = column.to_numpy().astype(np.float64).reshape(-1, 1)
    predictor.run_feeds(feeds)
    rows += batch.num_rows
seconds = time.perf_counter() - started
from course_pkg.batch import _peak_rss_mb
print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": _peak_rss_mb()}))
"""

OURS = """
import json, sys
from course_pkg.batch import score_file
s = score_file(sys.argv[1], sys.argv[2], sys.argv[4], chunk_rows=int(sys.argv[3]),
               workers=int(sys.argv[5]), progress=False, resume=False)
print(json.dumps({"rows": s.rows, "seconds": s.seconds, "peak_mb": s.peak_rss_mb}))
"""

NAIVE = """
import json, sys, time
import pandas as pd
from course_pkg.artifacts import load_package
pipeline, _ = load_package(sys.argv[1], file="model.skops")
features = ["amount", "merchant_category", "hour", "card_present", "foreign"]
started = time.perf_counter(); rows = 0; first = True
for chunk in pd.read_csv(sys.argv[2], chunksize=int(sys.argv[3])):
    chunk["probability_1"] = pipeline.predict_proba(chunk[features])[:, 1]
    chunk.to_csv(sys.argv[4], mode="w" if first else "a", header=first, index=False)
    first = False; rows += len(chunk)
seconds = time.perf_counter() - started
from course_pkg.batch import _peak_rss_mb
print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": _peak_rss_mb()}))
"""


def run(code: str, *args: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chunk-rows", type=int, default=65_536)
    parser.add_argument(
        "--naive-rows",
        type=int,
        default=2_000_000,
        help="the naive loop is slow: run it on the first N rows (rows/s compares)",
    )
    args = parser.parse_args()
    from course_pkg.datasets.transactions import write_transactions
    from course_pkg.training import package_fraud

    work = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    model = package_fraud(work / "fraud").path
    parquet, csv = work / "tx.parquet", work / "tx.csv"
    write_transactions(parquet, args.rows)
    write_transactions(csv, min(args.rows, args.naive_rows))
    chunk = str(args.chunk_rows)
    results = {
        "floor (pyarrow + onnxruntime)": run(FLOOR, str(model), str(parquet), chunk),
        "ours, 1 worker": run(OURS, str(model), str(parquet), chunk, str(work / "o1.parquet"), "1"),
        "ours, 2 workers": run(
            OURS, str(model), str(parquet), chunk, str(work / "o2.parquet"), "2"
        ),
        "naive (pandas read_csv + sklearn)": run(
            NAIVE, str(model), str(csv), chunk, str(work / "n.csv")
        ),
    }
    floor_rate = (
        results["floor (pyarrow + onnxruntime)"]["rows"]
        / results["floor (pyarrow + onnxruntime)"]["seconds"]
    )
    print(f"{'scorer':<36}{'rows':>12}{'seconds':>9}{'rows/s':>12}{'peak MB':>9}{'× floor':>9}")
    for name, r in results.items():
        rate = r["rows"] / r["seconds"]
        print(
            f"{name:<36}{r['rows']:>12,.0f}{r['seconds']:>9.1f}{rate:>12,.0f}"
            f"{r['peak_mb']:>9.0f}{rate / floor_rate:>9.2f}"
        )


if __name__ == "__main__":
    main()
