"""``course-pkg``: the command line of the reference implementation.

Each subcommand imports what it needs when it runs, so ``course-pkg --help`` stays instant.
Exit codes: 0 success, 1 the thing checked is not OK (doctor, data verify), 2 usage errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _doctor(args: argparse.Namespace) -> int:
    from course_pkg.preflight import run_preflight

    report = run_preflight()
    print(report.as_text())
    return 0 if report.ok else 1


def _data_build(args: argparse.Namespace) -> int:
    from course_pkg.datasets import build_all

    for name in build_all():
        print(f"wrote datasets/{name}")
    return 0


def _data_verify(args: argparse.Namespace) -> int:
    from course_pkg.datasets import verify_sums

    problems = verify_sums()
    for line in problems:
        print(f"FAIL {line}", file=sys.stderr)
    if not problems:
        print("OK: every shipped data file matches datasets/SHA256SUMS")
    return 1 if problems else 0


def _data_transactions(args: argparse.Namespace) -> int:
    import time

    from course_pkg.datasets import write_transactions

    if args.rows < 0:
        print("error: --rows must be ≥ 0", file=sys.stderr)
        return 2
    if args.out.suffix.lower() not in {".csv", ".parquet"}:
        print(f"error: --out {args.out}: use a .csv or .parquet file name", file=sys.stderr)
        return 2
    started = time.perf_counter()
    write_transactions(args.out, args.rows, seed=args.seed)
    seconds = time.perf_counter() - started
    size_mb = args.out.stat().st_size / 1e6
    print(f"wrote {args.rows:,} rows to {args.out} ({size_mb:.1f} MB) in {seconds:.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from course_pkg import __version__

    parser = argparse.ArgumentParser(
        prog="course-pkg", description="Reference tools for packaging and serving ML models."
    )
    parser.add_argument("--version", action="version", version=f"course-pkg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    doctor = sub.add_parser("doctor", help="check this machine is ready for the course")
    doctor.set_defaults(func=_doctor)

    data = sub.add_parser("data", help="build, verify or generate datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    data_sub.add_parser("build", help="regenerate datasets/ and SHA256SUMS").set_defaults(
        func=_data_build
    )
    data_sub.add_parser("verify", help="check datasets/ against SHA256SUMS").set_defaults(
        func=_data_verify
    )
    tx = data_sub.add_parser("transactions", help="generate the big transactions file")
    tx.add_argument("--rows", type=int, default=10_000_000, help="rows (default 10,000,000)")
    tx.add_argument("--out", type=Path, required=True, help="output .csv or .parquet")
    tx.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    tx.set_defaults(func=_data_transactions)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
