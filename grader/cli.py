"""``grader``: the instructor's command line.

Exit codes: 0 success, 1 a check found a problem (e.g. ``assign --check`` found drift),
2 usage or authoring errors.
"""

from __future__ import annotations

import argparse
import subprocess
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


def _grade(args: argparse.Namespace) -> int:
    from grader.specs import load_assignment

    try:
        assignment = load_assignment(args.assignment)
    except KeyError as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return 2
    import dataclasses

    if args.cell_timeout:
        assignment = dataclasses.replace(assignment, cell_timeout=args.cell_timeout)
    if args.probe_timeout:
        assignment = dataclasses.replace(assignment, probe_timeout=args.probe_timeout)
    if not args.submissions.is_dir():
        print(f"error: {args.submissions} is not a directory of submissions", file=sys.stderr)
        return 2
    if args.backend == "local":
        print(
            "WARNING: --backend local runs submissions UNSANDBOXED with your permissions; "
            "use it only for your own notebook",
            file=sys.stderr,
        )
    elif not _docker_ready(args.image):
        return 2
    else:
        from grader.runner.containers import reap_stale

        reaped = reap_stale()
        if reaped:
            print(f"removed {reaped} container(s) left by an earlier grader run that was killed")
    from grader.batch import grade_batch

    code = grade_batch(args, assignment)
    if code not in (0, 1):  # stopped by SIGINT/SIGTERM: no report over a partial batch
        return code
    try:
        from grader.gradebook import write_gradebook

        flags = _write_similarity(
            args.submissions, assignment.id, assignment.notebook, args.out, 0.8
        )
        print(f"gradebook: {write_gradebook(args.out, assignment, similarity=flags)}")
    except Exception as error:  # the report flags; it must never cost the gradebook
        from grader.render import terminal_text

        print(f"similarity report not written: {terminal_text(str(error))}", file=sys.stderr)
        return 1
    return code


def _write_similarity(
    folder: Path, assignment: str, notebook: str, out: Path, threshold: float
) -> dict[str, str]:
    """similarity.csv/.html under ``out``; per submission its highest match (gradebook).

    Notebooks are read through the intake (private copies, no symlink followed), by id."""
    import tempfile

    from grader.intake import scan, take_copy
    from grader.similarity import compare, highest
    from grader.similarity_report import write_report

    with tempfile.TemporaryDirectory(prefix="grader-similarity-") as private:
        notebooks = {}
        for entry in scan(folder):
            take_copy(folder, entry, Path(private))
            if entry.status is None and entry.copy is not None:
                notebooks[entry.id] = entry.copy
        matches, unreadable = compare(notebooks, notebook, threshold)
    written = write_report(out, assignment, matches, threshold)
    print(f"similarity: {len(matches)} pairs at or above {threshold:.0%} → {written[1]}")
    if unreadable:
        print(f"similarity: skipped {len(unreadable)} unreadable notebooks")
    return highest(matches)


def _similarity(args: argparse.Namespace) -> int:
    """``grader similarity RESULTS/`` (what ``grader grade`` wrote: assignment and folder are
    recorded there, the report and gradebook column are refreshed in place) or
    ``grader similarity SUBMISSIONS/ --assignment NN --out DIR``."""
    from grader.gradebook import recorded_run, write_gradebook
    from grader.render import terminal_text as shown
    from grader.specs import load_assignment

    if not args.folder.is_dir():
        print(f"error: {shown(str(args.folder))} is not a directory", file=sys.stderr)
        return 2
    if not 0 < args.threshold <= 1:
        print("error: --threshold is a share between 0 and 1, e.g. 0.8", file=sys.stderr)
        return 2
    try:
        run = recorded_run(args.folder)
    except ValueError as error:
        print(f"error: {shown(str(error))}", file=sys.stderr)
        return 2
    if run is not None:
        recorded, submissions = run
        if args.assignment and args.assignment != recorded:
            print(
                f"error: {shown(str(args.folder))} holds grades for assignment {shown(recorded)}, "
                f"not {shown(args.assignment)}",
                file=sys.stderr,
            )
            return 2
        assignment_id, out = recorded, args.out or args.folder
        if not submissions.is_dir():
            print(
                f"error: the graded submissions folder {shown(str(submissions))} is gone; pass it "
                f"instead: grader similarity SUBMISSIONS/ --assignment {shown(recorded)} --out DIR",
                file=sys.stderr,
            )
            return 2
    elif args.assignment and args.out:
        assignment_id, out, submissions = args.assignment, args.out, args.folder
    else:
        print(
            f"error: {shown(str(args.folder))} is not a results folder of grader grade (no "
            "grading-run.json); for a folder of submissions pass --assignment and --out",
            file=sys.stderr,
        )
        return 2
    try:
        assignment = load_assignment(assignment_id)
    except KeyError as error:
        print(f"error: {shown(str(error.args[0]))}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    flags = _write_similarity(submissions, assignment.id, assignment.notebook, out, args.threshold)
    if run is not None and out == args.folder:
        print(f"gradebook: {write_gradebook(out, assignment, similarity=flags)}")
    return 0


def _docker_ready(image: str) -> bool:
    probe = subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False)
    if probe.returncode != 0:
        print(
            f"error: grading image {image} not found (or no Docker engine): run "
            "`grader build-image` (and `sudo scripts/docker-up` if the engine is down)",
            file=sys.stderr,
        )
        return False
    return True


def _check(args: argparse.Namespace) -> int:
    from grader.gradebook import feedback_markdown
    from grader.grading import grade
    from grader.specs import load_assignment

    assignment = load_assignment(args.assignment)
    if args.backend == "local":
        print("UNSANDBOXED local preview: your notebook runs with your permissions.\n")
    elif not _docker_ready(args.image):
        return 2
    result = grade(args.notebook, assignment, backend=args.backend, image=args.image)
    print(feedback_markdown(result, assignment))
    return 0


def _build_image(args: argparse.Namespace) -> int:
    from grader.image import build_image

    return build_image(args.tag, args.base_image)


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

    from grader.runner.docker_backend import DEFAULT_IMAGE

    grade = sub.add_parser("grade", help="grade a folder of submissions")
    grade.add_argument("submissions", type=Path, help="folder: one file per submission")
    grade.add_argument("--assignment", required=True, help="e.g. 00, 01, 02")
    grade.add_argument("--out", type=Path, required=True, help="results folder")
    grade.add_argument("--jobs", type=int, default=1, help="submissions graded at once")
    grade.add_argument("--timeout", type=int, help="wall-clock seconds per submission")
    grade.add_argument("--cell-timeout", type=int, help="seconds per notebook cell (spec default)")
    grade.add_argument(
        "--probe-timeout", type=int, help="seconds per question's probe (default: cell timeout)"
    )
    grade.add_argument("--backend", choices=["docker", "local"], default="docker")
    grade.add_argument("--image", default=DEFAULT_IMAGE)
    grade.add_argument("--force", action="store_true", help="regrade finished submissions")
    grade.set_defaults(func=_grade)

    similar = sub.add_parser(
        "similarity", help="flag answer cells that match each other or the reference solution"
    )
    similar.add_argument(
        "folder",
        type=Path,
        help="RESULTS/ from grader grade, or a folder of submissions (then --assignment, --out)",
    )
    similar.add_argument("--assignment", help="e.g. 00 (read from RESULTS/ when given that)")
    similar.add_argument("--out", type=Path, help="where the report goes (default: RESULTS/)")
    similar.add_argument("--threshold", type=float, default=0.8, help="share, default 0.8")
    similar.set_defaults(func=_similarity)

    check = sub.add_parser("check", help="preview your grade for one notebook")
    check.add_argument("notebook", type=Path)
    check.add_argument("--assignment", required=True)
    check.add_argument("--backend", choices=["docker", "local"], default="local")
    check.add_argument("--image", default=DEFAULT_IMAGE)
    check.set_defaults(func=_check)

    image = sub.add_parser("build-image", help="build the grading image (offline)")
    image.add_argument("--tag", default=DEFAULT_IMAGE)
    image.add_argument("--base-image", default="course-base:bookworm-py311")
    image.set_defaults(func=_build_image)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
