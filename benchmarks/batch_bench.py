"""Batch scoring of the generated transactions: our engines vs two floors vs naive.

    .venv/bin/python benchmarks/batch_bench.py [--rows 10000000] [--chunk-rows 65536] [--no-ray]

Every way scores the same rows with the same fraud model, each in its own process (so each
peak-memory figure is its own):

- **floor, read+infer**: pyarrow reads the Parquet file in the same batches and onnxruntime
  runs on them; nothing is validated or written;
- **floor, read+infer+write**: the same, and the input columns plus the outputs are written
  once with one ``pyarrow.parquet.ParquetWriter``: the least any scorer that writes its
  results can do (the issue-20 floor);
- **local, N workers**: ``score_file`` Parquet → Parquet dataset: validation, rejects, every
  input column written through, resumable part files, progress bookkeeping, summary;
- **ray, N actors**: ``score_file(engine="ray")`` on a local Ray runtime; the runtime is
  started before the clock starts (its start-up, ~10-40 s here, is printed separately);
- **naive**: ``pandas.read_csv(chunksize=...)`` on the CSV version of the first rows and
  scikit-learn ``predict_proba`` per chunk, appending to a CSV.

Prints rows/s, peak RSS and the ratios to both floors. Goal (issue 20): local with 2 workers
≥ 0.8× the read+infer+write floor.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLOOR = """
import json, sys, time
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
from course_pkg.onnx_export import OnnxPredictor
from course_pkg.batch import peak_rss_mb
predictor = OnnxPredictor.from_package(sys.argv[1])
types = predictor.input_types
write = sys.argv[4] if len(sys.argv) > 4 else None
started = time.perf_counter(); rows = 0; writer = None
for batch in pq.ParquetFile(sys.argv[2]).iter_batches(batch_size=int(sys.argv[3])):
    feeds = {}
    for name, kind in types.items():
        column = batch.column(name)
        if kind == "tensor(string)":
            feeds[name] = column.to_numpy(zero_copy_only=False).astype(object).reshape(-1, 1)
        else:
            feeds[name] = column.to_numpy().astype(np.float64).reshape(-1, 1)
    labels, proba = predictor.run_feeds(feeds)
    if write:
        table = pa.Table.from_batches([batch])
        table = table.append_column("prediction", pa.array(labels))
        table = table.append_column("probability_0", pa.array(proba[:, 0]))
        table = table.append_column("probability_1", pa.array(proba[:, 1]))
        if writer is None:
            writer = pq.ParquetWriter(write, table.schema)
        writer.write_table(table)
    rows += batch.num_rows
if writer is not None:
    writer.close()
seconds = time.perf_counter() - started
print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak_rss_mb()}))
"""

OURS = """
import json, sys, time
from course_pkg.batch import score_file
engine = sys.argv[6]
startup = 0.0
if engine == "ray":
    from course_pkg.batch.ray_engine import prepare_environment, connect
    prepare_environment(local=True)
    began = time.perf_counter(); connect(None, cpus=int(sys.argv[5]) + 1)
    startup = time.perf_counter() - began
s = score_file(sys.argv[1], sys.argv[2], sys.argv[4], chunk_rows=int(sys.argv[3]),
               workers=int(sys.argv[5]), progress=False, resume=False, engine=engine)
print(json.dumps({"rows": s.rows, "seconds": s.seconds, "peak_mb": s.peak_rss_mb,
                  "startup": startup}))
"""

NAIVE = """
import json, sys, time
import pandas as pd
from course_pkg.artifacts import load_package
from course_pkg.batch import peak_rss_mb
pipeline, _ = load_package(sys.argv[1], file="model.skops")
features = ["amount", "merchant_category", "hour", "card_present", "foreign"]
started = time.perf_counter(); rows = 0; first = True
for chunk in pd.read_csv(sys.argv[2], chunksize=int(sys.argv[3])):
    chunk["probability_1"] = pipeline.predict_proba(chunk[features])[:, 1]
    chunk.to_csv(sys.argv[4], mode="w" if first else "a", header=first, index=False)
    first = False; rows += len(chunk)
seconds = time.perf_counter() - started
print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak_rss_mb()}))
"""


def run(code: str, *args: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{done.stderr[-3000:]}")
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
    parser.add_argument("--no-ray", action="store_true", help="skip the two Ray runs")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive loop")
    args = parser.parse_args()
    from course_pkg.datasets.transactions import write_transactions
    from course_pkg.training import package_fraud

    work = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    model = str(package_fraud(work / "fraud").path)
    parquet, csv = work / "tx.parquet", work / "tx.csv"
    write_transactions(parquet, args.rows)
    chunk = str(args.chunk_rows)
    source = str(parquet)
    results = {
        "floor: read+infer": run(FLOOR, model, source, chunk),
        "floor: read+infer+write": run(FLOOR, model, source, chunk, str(work / "f.parquet")),
        "local, 1 worker": run(OURS, model, source, chunk, str(work / "l1.parquet"), "1", "local"),
        "local, 2 workers": run(OURS, model, source, chunk, str(work / "l2.parquet"), "2", "local"),
    }
    if not args.no_ray:
        for actors in ("1", "2"):
            results[f"ray, {actors} actor{'s' if actors != '1' else ''}"] = run(
                OURS, model, source, chunk, str(work / f"r{actors}.parquet"), actors, "ray"
            )
    if not args.no_naive:
        write_transactions(csv, min(args.rows, args.naive_rows))
        results["naive (pandas read_csv + sklearn)"] = run(
            NAIVE, model, str(csv), chunk, str(work / "n.csv")
        )
    floors = [
        results[name]["rows"] / results[name]["seconds"]
        for name in ("floor: read+infer", "floor: read+infer+write")
    ]
    print(
        f"{'scorer':<36}{'rows':>12}{'seconds':>9}{'rows/s':>12}{'peak MB':>9}"
        f"{'× r+i':>8}{'× r+i+w':>9}"
    )
    for name, r in results.items():
        rate = r["rows"] / r["seconds"]
        print(
            f"{name:<36}{r['rows']:>12,.0f}{r['seconds']:>9.1f}{rate:>12,.0f}"
            f"{r['peak_mb']:>9.0f}{rate / floors[0]:>8.2f}{rate / floors[1]:>9.2f}"
        )
    for name, r in results.items():
        if r.get("startup"):
            print(f"{name}: Ray runtime start-up {r['startup']:.1f} s (not in its seconds)")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
