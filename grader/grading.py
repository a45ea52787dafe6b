"""Score one submission on the host: run it (docker or local), then compare probe values
with the hidden expected values. Nothing from the container can set a score directly."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from course_pkg.checks._delegation import message as delegation_message
from grader.runner.docker_backend import DEFAULT_IMAGE, RawRun, run_docker
from grader.specs.model import Assignment, Outcome, forbidden

MAX_SUBMISSION_BYTES = 20 * 1024 * 1024
STATUS_MEANING = {
    "ok": "the notebook ran and every probe was tried",
    "timeout": "stopped at the time limit",
    "memory": "killed at the memory limit",
    "crashed": "the kernel or the runner died before finishing",
    "output-limit": "printed more output than allowed",
    "invalid-notebook": "not a readable Jupyter notebook",
    "error": "the grader could not run this submission (infrastructure problem)",
}


@dataclass
class QuestionScore:
    id: str
    title: str
    score: float
    max_score: float
    feedback: str


@dataclass
class SubmissionResult:
    submission: str
    assignment: str
    status: str
    score: float
    max_score: float
    seconds: float
    backend: str
    detail: str = ""
    questions: list[QuestionScore] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def submission_id(path: Path) -> str:
    """``alice.ipynb`` → ``alice``; any other file keeps its full name (``notes.txt``)."""
    return path.stem if path.suffix == ".ipynb" else path.name


def precheck(path: Path) -> str | None:
    """A reason the file cannot be a notebook, found cheaply on the host (or None)."""
    if not path.is_file():
        return "not a file"
    if path.stat().st_size > MAX_SUBMISSION_BYTES:
        return f"larger than {MAX_SUBMISSION_BYTES // 2**20} MiB"
    try:
        import nbformat

        nbformat.validate(nbformat.read(path, as_version=4))
    except Exception as error:
        return f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
    return None


def _score_question(
    question: Any, probe: dict[str, Any] | None, copied: list[str] | None = None
) -> QuestionScore:
    # Handing in course_pkg's own implementation scores 0, whether the host saw it in the
    # source (``copied``, static) or the sandbox saw the answer run it (``delegated``).
    delegated = list(copied or []) + [n for n in (probe or {}).get("delegated", []) if n]
    if delegated:
        return QuestionScore(
            question.id,
            question.title,
            0.0,
            question.points,
            delegation_message(sorted(set(delegated))),
        )
    if probe is None:
        return QuestionScore(
            question.id,
            question.title,
            0.0,
            question.points,
            "not graded: the notebook did not finish, so probes did not run",
        )
    if "error" in probe:
        message = f"your code raised {probe['error']}"
        if probe["error"].startswith(("NameError", "NotImplementedError")):
            message = f"not done yet ({probe['error'].split(':')[0]})"
        return QuestionScore(question.id, question.title, 0.0, question.points, message)
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
    except Exception:  # precheck already read it; a race must not crash the batch
        return {}
    return scan(
        cells, [(q.id, q.answers, forbidden(assignment.id, q.id)) for q in assignment.questions]
    )


def grade(
    path: Path,
    assignment: Assignment,
    *,
    backend: str = "docker",
    image: str = DEFAULT_IMAGE,
    timeout: int | None = None,
) -> SubmissionResult:
    submission = submission_id(path)
    reason = precheck(path)
    if reason is not None:
        run = RawRun("invalid-notebook", None, 0.0, reason)
    elif backend == "docker":
        run = run_docker(path, assignment, image=image, timeout=timeout)
    elif backend == "local":
        from grader.runner.local_backend import run_local

        run = run_local(path, assignment, timeout=timeout)
    else:
        raise ValueError(f"unknown backend {backend!r}: docker or local")
    probes = (run.result or {}).get("probes", {})
    copied = _copied(path, assignment) if reason is None else {}
    questions = [
        _score_question(q, probes.get(q.id) if run.result else None, copied.get(q.id))
        for q in assignment.questions
    ]
    return SubmissionResult(
        submission=submission,
        assignment=assignment.id,
        status=run.status,
        score=round(sum(q.score for q in questions), 4),
        max_score=assignment.total_points,
        seconds=run.seconds,
        backend=backend,
        detail=run.detail or STATUS_MEANING.get(run.status, ""),
        questions=questions,
    )


def load_result(path: Path) -> SubmissionResult:
    data = json.loads(path.read_text())["extra_data"]["course"]
    data["questions"] = [QuestionScore(**q) for q in data["questions"]]
    return SubmissionResult(**data)
