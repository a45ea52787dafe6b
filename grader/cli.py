"""``grader``: the instructor's command line.

Exit codes: 0 success, 1 a check found a problem (e.g. ``assign --check`` found drift),
2 usage or authoring errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from course_pkg import paths


def _assign(args: argparse.Namespace) -> int:
    from grader.authoring.assign import AuthoringError, assign, check_drift

    try:
        if args.check:
            drift = check_drift(args.solutions, args.out)
            for item in drift:
                print(f"DRIFT {item.path}: {item.reason}", file=sys.stderr)
            if drift:
                print("notebooks/ is out of date: run `make assign` and commit", file=sys.stderr)
                return 1
            print(f"OK: {args.out} matches what `grader assign` writes from {args.solutions}")
            return 0
        written = assign(args.solutions, args.out)
    except AuthoringError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}" if path.exists() else f"removed {path}")
    if not written:
        print(f"{args.out} already up to date")
    return 0


def _execute(args: argparse.Namespace) -> int:
    from grader.authoring.execute import execute_in_place

    for path in args.notebooks:
        print(f"executing {path}", flush=True)
        execute_in_place(path, timeout=args.timeout)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader", description="Author and grade the course.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    assign = sub.add_parser("assign", help="write student notebooks from solutions")
    assign.add_argument("--solutions", type=Path, default=paths.SOLUTIONS)
    assign.add_argument("--out", type=Path, default=paths.NOTEBOOKS)
    assign.add_argument("--check", action="store_true", help="exit 1 if notebooks/ would change")
    assign.set_defaults(func=_assign)

    execute = sub.add_parser("execute", help="run solution notebooks in place (store outputs)")
    execute.add_argument("notebooks", nargs="+", type=Path)
    execute.add_argument("--timeout", type=int, default=900, help="per-cell timeout in seconds")
    execute.set_defaults(func=_execute)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
