"""``grader grade``'s loop: every folder entry gets a row, whatever happens.

Each submission is taken in (grader.intake), graded and written — results.json, feedback.md
— inside one guard, in a worker thread, so no submission's name, content or failure can stop
another's. The gradebook is rebuilt after each one and once more at the end, also after
SIGINT/SIGTERM: then the run removes every container it started (by its run label), keeps
what finished, names what did not, and exits 130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from grader.grading import QuestionScore, SubmissionResult, grade_entry
from grader.intake import Submission, scan, take_copy
from grader.render import terminal_text
from grader.runner.containers import CURRENT, STOPPING, Interrupted, remove_run
from grader.specs.model import Assignment


class _Stop(BaseException):
    """Raised in the main thread by the SIGINT/SIGTERM handler."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@dataclass
class Outcome:
    entry: Submission
    result: SubmissionResult | None
    problem: str = ""  # set when the submission could not be graded or written


def _error_result(entry: Submission, assignment: Assignment, why: str) -> SubmissionResult:
    return SubmissionResult(
        submission=entry.id,
        assignment=assignment.id,
        status="error",
        score=0.0,
        max_score=assignment.total_points,
        seconds=0.0,
        backend="",
        detail=why[:500],
        questions=[
            QuestionScore(q.id, q.title, 0.0, q.points, "not graded: grader error", "not-run")
            for q in assignment.questions
        ],
        name=entry.name,
        note=entry.note,
    )


def grade_one(
    entry: Submission, args: argparse.Namespace, assignment: Assignment, private: Path
) -> Outcome:
    """Intake, grading and writing of one entry; only an interruption escapes."""
    from grader.gradebook import write_submission

    problem = ""
    try:
        take_copy(args.submissions, entry, private)
        result = grade_entry(
            entry, assignment, backend=args.backend, image=args.image, timeout=args.timeout
        )
    except Interrupted:
        raise
    except Exception as error:  # one broken submission never stops the batch
        problem = f"{type(error).__name__}: {error}"
        result = _error_result(entry, assignment, problem)
    finally:
        if entry.copy is not None:
            entry.copy.unlink(missing_ok=True)
    if result.status == "error" and not problem:
        problem = result.detail
    if entry.duplicate and result.status == "ok":  # a worse status says more; keep it
        result.status = "duplicate-id"
    try:
        write_submission(args.out, result, assignment)
    except Exception as error:
        return Outcome(entry, None, f"results not written: {type(error).__name__}: {error}")
    return Outcome(entry, result, problem)


def _rebuild_gradebook(out: Path, assignment: Assignment) -> Path | None:
    from grader.gradebook import write_gradebook

    try:
        return write_gradebook(out, assignment)
    except Exception as error:
        print(f"error: gradebook not written: {type(error).__name__}: {error}", file=sys.stderr)
        return None


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if STOPPING.is_set():
        print("still stopping: removing this run's containers", file=sys.stderr)
        return
    STOPPING.set()
    raise _Stop(signum)


def _remove_until_idle(futures: dict[Future[Outcome], Submission]) -> int:
    """Remove the run's containers until no worker is left waiting on one (a worker may
    have started its container just as the signal came)."""
    removed = remove_run(CURRENT)
    deadline = time.monotonic() + 120
    while not all(f.done() for f in futures) and time.monotonic() < deadline:
        time.sleep(0.5)
        removed += remove_run(CURRENT)
    return removed


def grade_batch(args: argparse.Namespace, assignment: Assignment) -> int:
    from grader.gradebook import finished, record_run

    entries = scan(args.submissions)
    args.out.mkdir(parents=True, exist_ok=True)
    record_run(args.out, assignment.id, args.submissions)
    todo = [e for e in entries if args.force or not finished(args.out, e.id)]
    if len(entries) > len(todo):
        print(f"skipping {len(entries) - len(todo)} already graded (use --force to regrade)")
    private = Path(tempfile.mkdtemp(prefix="grader-intake-"))
    pool = ThreadPoolExecutor(max_workers=max(1, args.jobs))
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    problems: dict[str, str] = {}
    done: set[str] = set()
    stopped: int | None = None
    futures: dict[Future[Outcome], Submission] = {}
    try:
        for entry in todo:
            futures[pool.submit(grade_one, entry, args, assignment, private)] = entry
        for future in as_completed(futures):
            entry = futures[future]
            try:
                outcome = future.result()
            except Interrupted:
                continue
            done.add(entry.id)
            if outcome.problem:
                problems[entry.id] = outcome.problem
            if outcome.result is not None:
                r = outcome.result
                print(
                    terminal_text(
                        f"{r.submission}: {r.score:g}/{r.max_score:g} [{r.status}] {r.seconds:.1f}s"
                        + (f" ({r.note})" if r.note else "")
                    ),
                    flush=True,
                )
            _rebuild_gradebook(args.out, assignment)
    except _Stop as stop:
        stopped = stop.signum
        pool.shutdown(wait=False, cancel_futures=True)
        removed = _remove_until_idle(futures)
        print(
            f"stopped by {signal.Signals(stopped).name}: removed {removed} container(s) of "
            f"run {CURRENT.value}",
            file=sys.stderr,
        )
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(private, ignore_errors=True)
    book = _rebuild_gradebook(args.out, assignment)
    if book is not None:
        print(f"gradebook: {book}")
    if stopped is not None:
        missing = [e.id for e in todo if e.id not in done]
        print(
            f"graded {len(done)} of {len(todo)}; not graded (rerun to resume): "
            + terminal_text(", ".join(missing), 2000),
            file=sys.stderr,
        )
        return 128 + stopped
    for ident, problem in sorted(problems.items()):
        print(terminal_text(f"could not grade {ident}: {problem}", 500), file=sys.stderr)
    if problems or book is None:
        print(f"{len(problems)} submission(s) could not be graded: rerun them", file=sys.stderr)
        return 1
    return 0
