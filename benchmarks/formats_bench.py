"""Model formats side by side, and what safe loading costs.

    .venv/bin/python benchmarks/formats_bench.py [--repeats 20]

Prints, for the reference churn pipeline: size, median load time and parity per format
(course_pkg.artifacts.compare_formats), then plain ``pickle.load`` / ``joblib.load`` against
``safe_load`` on the same bytes for a logistic regression and a 100-tree random forest, with
the ratio. Numbers go to docs/ARTIFACTS.md.
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
from pathlib import Path

import joblib

from course_pkg.artifacts import safe_load
from course_pkg.artifacts.formats import compare_formats, median_ms, reports_frame
from course_pkg.training import train_churn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="formats-bench-"))

    logreg = train_churn("logreg")
    print("== formats, reference pipeline (logistic regression) ==")
    frame = reports_frame(
        compare_formats(logreg.pipeline, logreg.x_test, work, repeats=args.repeats)
    )
    print(frame.drop(columns=["portability"]).to_string())

    print("\n== safe_load overhead (same bytes; median of", args.repeats, "loads) ==")
    print(f"{'model':<14} {'format':<8} {'KB':>7} {'naive ms':>9} {'safe ms':>8} {'ratio':>6}")
    for kind in ("logreg", "random_forest"):
        pipeline = logreg.pipeline if kind == "logreg" else train_churn(kind).pipeline
        pkl, jbl = work / f"{kind}.pkl", work / f"{kind}.joblib"
        pkl.write_bytes(pickle.dumps(pipeline, protocol=5))
        joblib.dump(pipeline, jbl)
        for fmt, path, naive in (
            ("pickle", pkl, lambda p=pkl: pickle.loads(p.read_bytes())),
            ("joblib", jbl, lambda p=jbl: joblib.load(p)),
        ):
            plain, _ = median_ms(naive, args.repeats)
            safe, _ = median_ms(lambda p=path: safe_load(p), args.repeats)
            size = path.stat().st_size / 1024
            print(
                f"{kind:<14} {fmt:<8} {size:>7.1f} {plain:>9.2f} {safe:>8.2f} {safe / plain:>5.1f}x"
            )


if __name__ == "__main__":
    main()
