"""Score one submission on the host: run it (docker or local), then compare probe values
with the hidden expected values. Nothing from the container can set a score directly."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from course_pkg.checks._delegation import message as delegation_message
from grader.intake import MAX_SUBMISSION_BYTES, Submission, base_id, display_name, take_copy
from grader.runner.containers import CURRENT, RunId
from grader.runner.docker_backend import DEFAULT_IMAGE, RawRun, run_docker
from grader.specs.model import Assignment, Outcome, forbidden

STATUS_MEANING = {
    "ok": "the notebook ran and every probe was tried",
    "duplicate-id": (
        "graded (the score stands), but another file of the folder has the same id once "
        "normalised: the note names it; check both are who they claim to be"
    ),
    "timeout": "stopped at the time limit",
    "memory": "killed at the memory limit",
    "crashed": "the kernel or the runner died before finishing",
    "output-limit": "printed more output than allowed",
    "invalid-notebook": "not a readable Jupyter notebook",
    "not-a-file": "not a file (a directory, a device, …): submit one .ipynb file",
    "symlink-refused": "a symbolic link: the grader never follows links",
    "too-large": f"larger than the {MAX_SUBMISSION_BYTES // 2**20} MiB size limit",
    "reserved-name": "a file name the grader reserves for its own output",
    "error": "the grader could not run this submission (infrastructure problem)",
}
# Per question, when its probe returned no value.
PROBE_STATUS_MEANING = {
    "probe-timeout": "this question's check ran past its time limit",
    "probe-crashed": "the kernel died or gave no value while this question was checked",
    "probe-output-too-large": "your function returned a value too large to check",
    "memory": "the memory limit killed the kernel while this question was checked",
}
# Exceptions that mean "not answered yet" rather than "wrong".
_NOT_DONE = ("NameError", "NotImplementedError")


@dataclass
class QuestionScore:
    id: str
    title: str
    score: float
    max_score: float
    feedback: str
    status: str = (
        "ok"  # ok | error (the code raised) | not-run | delegated | a PROBE_STATUS_MEANING key
    )


@dataclass
class SubmissionResult:
    submission: str  # the safe id (grader.intake)
    assignment: str
    status: str
    score: float
    max_score: float
    seconds: float
    backend: str
    detail: str = ""
    questions: list[QuestionScore] = field(default_factory=list)
    name: str = ""  # the original file name, as data (rendered escaped)
    note: str = ""  # e.g. a duplicate id

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def notebook_problem(path: Path) -> str | None:
    """Why the private copy at ``path`` is not a notebook we can run (or None).

    The reason names the kind of problem and where, never the file's bytes: a submission
    may be anything, and whatever is quoted here ends up in results.json.
    """
    import nbformat

    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"not UTF-8 text (invalid byte at position {error.start}); save it as .ipynb"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        return (
            f"not JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
            "save it from Jupyter as .ipynb"
        )
    if not isinstance(data, dict) or "nbformat" not in data:
        return "JSON, but not a Jupyter notebook (no nbformat field)"
    try:
        notebook = nbformat.from_dict(data)
        notebook = nbformat.convert(notebook, 4) if data.get("nbformat") != 4 else notebook
        nbformat.validate(notebook)
    except Exception as error:  # nbformat's validation and conversion errors vary
        return f"not a valid Jupyter notebook ({type(error).__name__})"
    for index, cell in enumerate(notebook.cells):
        try:
            json.dumps(cell, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as error:
            return (
                f"cell {index + 1} contains a character that is not valid text (a lone "
                f"surrogate, at position {error.start} of the cell's JSON); delete it and save"
            )
    return None


def _score_question(
    question: Any, probe: dict[str, Any] | None, copied: list[str] | None = None
) -> QuestionScore:
    def zero(feedback: str, status: str) -> QuestionScore:
        return QuestionScore(question.id, question.title, 0.0, question.points, feedback, status)

    # Handing in course_pkg's own implementation scores 0, whether the host saw it in the
    # source (``copied``, static) or the sandbox saw the answer run it (``delegated``).
    delegated = list(copied or []) + [n for n in (probe or {}).get("delegated", []) if n]
    if delegated:
        return zero(delegation_message(sorted(set(delegated))), "delegated")
    if probe is None:
        return zero(
            "not graded: the notebook did not run to the end, so this was not checked", "not-run"
        )
    status = probe.get("status")
    if status in PROBE_STATUS_MEANING:
        reason = str(probe.get("error", ""))[:200]
        return zero(f"{PROBE_STATUS_MEANING[status]} ({reason})", status)
    if "error" in probe:
        error = str(probe["error"])[:300]
        if error.startswith(_NOT_DONE):
            return zero(f"not done yet ({error.split(':')[0]})", "error")
        return zero(f"your code raised {error}", "error")
    try:
        outcome = question.compare(probe.get("value"), question.expected())
        fraction = min(1.0, max(0.0, float(outcome.fraction)))
    except Exception as error:  # an odd value must not crash grading
        outcome, fraction = Outcome(0.0, f"unexpected result ({type(error).__name__})"), 0.0
    feedback = outcome.feedback
    if fraction < 1.0 and question.hint:
        feedback += f" — hint: {question.hint}"
    return QuestionScore(
        question.id, question.title, round(fraction * question.points, 4), question.points, feedback
    )


def _copied(path: Path, assignment: Assignment) -> dict[str, list[str]]:
    """Forbidden references in the answer cells, read from the source on the host."""
    import nbformat

    from grader.delegation_scan import scan

    try:
        cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    except Exception:  # notebook_problem already read it; a race must not crash the batch
        return {}
    return scan(
        cells, [(q.id, q.answers, forbidden(assignment.id, q.id)) for q in assignment.questions]
    )


def _missing_probe(run: RawRun) -> dict[str, Any] | None:
    """What a question whose probe never framed a result gets, given how the run ended."""
    if run.result is None:
        return None  # the notebook itself did not finish
    if run.status == "timeout":
        return {"status": "probe-timeout", "error": "the wall-clock limit stopped the run"}
    if run.status == "memory":
        return {"status": "memory", "error": "the memory limit killed the run"}
    return {"status": "probe-crashed", "error": "the runner stopped before this probe"}


def grade_entry(
    entry: Submission,
    assignment: Assignment,
    *,
    backend: str = "docker",
    image: str = DEFAULT_IMAGE,
    timeout: int | None = None,
    run_id: RunId = CURRENT,
) -> SubmissionResult:
    """Grade one intake entry (its private copy), or record why it was not graded."""
    ran = False
    if entry.status is not None:
        run = RawRun(entry.status, None, 0.0, entry.detail)
    elif entry.copy is None or (reason := notebook_problem(entry.copy)) is not None:
        run = RawRun("invalid-notebook", None, 0.0, reason or "no copy was made")
    elif backend == "docker":
        ran = True
        run = run_docker(entry.copy, assignment, image=image, timeout=timeout, run=run_id)
    elif backend == "local":
        from grader.runner.local_backend import run_local

        ran = True
        run = run_local(entry.copy, assignment, timeout=timeout)
    else:
        raise ValueError(f"unknown backend {backend!r}: docker or local")
    probes = (run.result or {}).get("probes", {})
    missing = _missing_probe(run)
    # the host's own reading of the answer cells (never the container's word)
    copied = _copied(entry.copy, assignment) if ran and entry.copy is not None else {}
    questions = [
        _score_question(q, probes.get(q.id, missing), copied.get(q.id))
        for q in assignment.questions
    ]
    return SubmissionResult(
        submission=entry.id,
        assignment=assignment.id,
        status=run.status,
        score=round(sum(q.score for q in questions), 4),
        max_score=assignment.total_points,
        seconds=run.seconds,
        backend=backend,
        detail=run.detail or STATUS_MEANING.get(run.status, ""),
        questions=questions,
        name=entry.name,
        note=entry.note,
    )


def grade(
    path: Path,
    assignment: Assignment,
    *,
    backend: str = "docker",
    image: str = DEFAULT_IMAGE,
    timeout: int | None = None,
    run_id: RunId = CURRENT,
) -> SubmissionResult:
    """Grade one file (``grader check``, tests, benchmarks) through the same intake."""
    raw = os.fsencode(path.name)
    entry = Submission(base_id(display_name(raw)), display_name(raw), raw)
    with tempfile.TemporaryDirectory(prefix="grader-intake-") as private:
        take_copy(path.parent, entry, Path(private))
        return grade_entry(
            entry, assignment, backend=backend, image=image, timeout=timeout, run_id=run_id
        )


def load_result(path: Path) -> SubmissionResult:
    data = json.loads(path.read_text(encoding="utf-8"))["extra_data"]["course"]
    data["questions"] = [QuestionScore(**q) for q in data["questions"]]
    return SubmissionResult(**data)
