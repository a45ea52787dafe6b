"""Write grading output: per-submission results.json (Gradescope shape) and feedback.md,
and gradebook.csv over all submissions. Every write is atomic (temp file + rename), so a
crash or Ctrl-C never leaves a half-written file and a re-run resumes where it stopped."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

from grader.grading import STATUS_MEANING, SubmissionResult, load_result
from grader.specs.model import Assignment

RESULTS_FILE = "results.json"
FEEDBACK_FILE = "feedback.md"
GRADEBOOK = "gradebook.csv"


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    lines = [
        f"# {assignment.id} · {assignment.title} — feedback for {result.submission}",
        "",
        f"**Score: {result.score:g} / {result.max_score:g}** · status: `{result.status}` "
        f"({STATUS_MEANING.get(result.status, '')})",
        "",
        "| question | points | feedback |",
        "|---|---|---|",
    ]
    for q in result.questions:
        mark = "✅" if q.score == q.max_score else ("🟡" if q.score > 0 else "❌")
        lines.append(f"| {mark} {q.id}: {q.title} | {q.score:g} / {q.max_score:g} | {q.feedback} |")
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


def finished(out: Path, submission: str) -> bool:
    return (out / submission / RESULTS_FILE).exists()


def write_gradebook(
    out: Path, assignment: Assignment, similarity: dict[str, str] | None = None
) -> Path:
    """Rebuild gradebook.csv from every results.json under ``out``; with ``similarity``
    (submission → its highest match, see grader.similarity) a last column flags copying."""
    results = sorted(
        (load_result(p) for p in out.glob(f"*/{RESULTS_FILE}")), key=lambda r: r.submission
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    extra = ["similarity"] if similarity is not None else []
    writer.writerow(
        ["submission", *[q.id for q in assignment.questions], "total", "max", "status", *extra]
    )
    for r in results:
        by_id = {q.id: q.score for q in r.questions}
        writer.writerow(
            [
                r.submission,
                *[f"{by_id.get(q.id, 0):g}" for q in assignment.questions],
                f"{r.score:g}",
                f"{r.max_score:g}",
                r.status,
                *([similarity.get(r.submission, "")] if similarity is not None else []),
            ]
        )
    target = out / GRADEBOOK
    atomic_write(target, buffer.getvalue())
    return target
