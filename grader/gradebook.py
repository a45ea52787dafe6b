"""Write grading output: per-submission results.json (Gradescope shape) and feedback.md,
and gradebook.csv over all submissions. Every write is atomic (temp file + rename), so a
crash or Ctrl-C never leaves a half-written file and a re-run resumes where it stopped.

Student-controlled text (the file name, exception messages, class names) is rendered only
through grader.render: escaped for Markdown/HTML in feedback.md, guarded against formulas
in gradebook.csv. results.json is JSON, whose encoder does its own escaping.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

from grader.grading import STATUS_MEANING, SubmissionResult, load_result
from grader.intake import MAX_SUBMISSION_BYTES
from grader.render import csv_cell, markdown_text
from grader.runner.inside import MAX_CELL_OUTPUT_BYTES, MAX_PROBE_BYTES
from grader.specs.model import Assignment

RESULTS_FILE = "results.json"
FEEDBACK_FILE = "feedback.md"
GRADEBOOK = "gradebook.csv"


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared and read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def limits(assignment: Assignment) -> dict[str, str]:
    """Each limit a submission can hit, worded for the student (also in docs/GRADING.md)."""
    return {
        "size": f"the file may be at most {MAX_SUBMISSION_BYTES // 2**20} MiB",
        "time": f"each cell may run {assignment.cell_timeout} s, each question's check "
        f"{assignment.probe_timeout or assignment.cell_timeout} s, and the whole notebook with "
        f"its checks {assignment.wall_timeout} s",
        "memory": f"the notebook may use {assignment.memory}B of memory (no swap)",
        "output": f"cells may print at most {MAX_CELL_OUTPUT_BYTES // 2**20} MiB in total",
        "value": f"a function's result, as JSON, may be at most {MAX_PROBE_BYTES // 1024} KiB",
        "processes": f"at most {assignment.pids} processes at once",
    }


# Which limit explains a submission or question status.
_LIMIT_OF = {
    "timeout": "time",
    "probe-timeout": "time",
    "memory": "memory",
    "output-limit": "output",
    "too-large": "size",
    "probe-output-too-large": "value",
}


def gradescope_json(result: SubmissionResult) -> dict[str, object]:
    """Gradescope's results.json: score, tests[], output; our full record in extra_data."""
    return {
        "score": result.score,
        "execution_time": result.seconds,
        "output": f"status: {result.status} — {STATUS_MEANING.get(result.status, '')}",
        "tests": [
            {
                "name": f"{q.id}: {q.title}",
                "score": q.score,
                "max_score": q.max_score,
                "output": q.feedback,
                "visibility": "visible",
            }
            for q in result.questions
        ],
        "extra_data": {"course": result.to_json()},
    }


def feedback_markdown(result: SubmissionResult, assignment: Assignment) -> str:
    name = markdown_text(result.name or result.submission, 120)
    lines = [
        f"# {assignment.id} · {assignment.title} — feedback for {name}",
        "",
        f"**Score: {result.score:g} / {result.max_score:g}** · status: `{result.status}` "
        f"({STATUS_MEANING.get(result.status, '')})",
    ]
    if result.status != "ok" and result.detail:
        lines += ["", f"What happened: {markdown_text(result.detail)}"]
    hit = {
        _LIMIT_OF[s]
        for s in [result.status, *(q.status for q in result.questions)]
        if s in _LIMIT_OF
    }
    for limit in sorted(hit):
        lines += ["", f"Limit: {markdown_text(limits(assignment)[limit])}."]
    if result.note:
        lines += ["", f"Note: {markdown_text(result.note)}"]
    lines += ["", "| question | points | feedback |", "|---|---|---|"]
    for q in result.questions:
        mark = "✅" if q.score == q.max_score else ("🟡" if q.score > 0 else "❌")
        lines.append(
            f"| {mark} {markdown_text(q.id)}: {markdown_text(q.title)} | "
            f"{q.score:g} / {q.max_score:g} | {markdown_text(q.feedback, 500)} |"
        )
    if result.backend == "local":
        lines += [
            "",
            "_Graded with the local backend: unsandboxed preview, not an official grade._",
        ]
    return "\n".join(lines) + "\n"


def write_submission(out: Path, result: SubmissionResult, assignment: Assignment) -> None:
    folder = out / result.submission
    atomic_write(folder / FEEDBACK_FILE, feedback_markdown(result, assignment))
    # results.json last: its presence marks the submission as finished (resume logic)
    atomic_write(folder / RESULTS_FILE, json.dumps(gradescope_json(result), indent=2) + "\n")


RUN_FILE = "grading-run.json"


def record_run(out: Path, assignment: str, submissions: Path) -> None:
    """Say in the results folder what was graded from where, so ``grader similarity
    RESULTS/`` can recompute the report (another threshold) without being told again."""
    run = {"assignment": assignment, "submissions": str(submissions.resolve())}
    atomic_write(out / RUN_FILE, json.dumps(run, indent=2) + "\n")


def recorded_run(out: Path) -> tuple[str, Path] | None:
    """(assignment, submissions folder) recorded by ``grader grade`` in ``out``, if any."""
    try:
        run = json.loads((out / RUN_FILE).read_text())
        return str(run["assignment"]), Path(run["submissions"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{out / RUN_FILE} is unreadable ({error}); rerun grader grade") from None


def finished(out: Path, submission: str) -> bool:
    return (out / submission / RESULTS_FILE).exists()


def write_gradebook(
    out: Path, assignment: Assignment, similarity: dict[str, str] | None = None
) -> Path:
    """Rebuild gradebook.csv from every results.json under ``out`` (unreadable ones: a row
    with status ``error``, so nothing disappears from the book); with ``similarity``
    (submission → its highest match, see grader.similarity) a last column flags copying."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    questions = [q.id for q in assignment.questions]
    extra = ["similarity"] if similarity is not None else []
    writer.writerow(["submission", "name", *questions, "total", "max", "status", "note", *extra])
    rows = []
    for path in sorted(out.glob(f"*/{RESULTS_FILE}")):
        try:
            r = load_result(path)
        except (OSError, ValueError, KeyError, TypeError):
            ident = path.parent.name
            flagged = [similarity.get(ident, "")] if similarity is not None else []
            rows.append(
                [ident, ident, *["0"] * len(questions), "0", "", "error", "unreadable", *flagged]
            )
            continue
        by_id = {q.id: q.score for q in r.questions}
        rows.append(
            [
                r.submission,
                r.name or r.submission,
                *[f"{by_id.get(q, 0):g}" for q in questions],
                f"{r.score:g}",
                f"{r.max_score:g}",
                r.status,
                r.note,
                *([similarity.get(r.submission, "")] if similarity is not None else []),
            ]
        )
    for row in sorted(rows):
        writer.writerow([csv_cell(cell) for cell in row])
    target = out / GRADEBOOK
    atomic_write(target, buffer.getvalue())
    return target
