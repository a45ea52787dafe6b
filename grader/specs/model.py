"""What an assignment spec is made of: questions, probes, expected values, comparisons.

- ``probe``: Python source defining ``probe()``; it runs *in the student's kernel* inside the
  sandbox and returns plain JSON (it calls the student's function on chosen inputs).
- ``expected``: a host-side function returning the expected JSON value. It never enters the
  container.
- ``compare``: host-side scoring of (probe result, expected) → fraction of the points and a
  feedback line. Hidden values are not quoted in feedback unless ``show_expected`` is set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Outcome:
    fraction: float  # 0.0 … 1.0 of the question's points
    feedback: str


def exact(got: Any, expected: Any) -> Outcome:
    if got == expected:
        return Outcome(1.0, "correct")
    return Outcome(0.0, "the result differs from the expected one")


def fraction_equal(got: Any, expected: list[Any]) -> Outcome:
    """Partial credit: the share of list positions that match."""
    if not isinstance(got, list) or len(got) != len(expected):
        return Outcome(0.0, f"expected a list of {len(expected)} results")
    right = sum(g == e for g, e in zip(got, expected, strict=True))
    return Outcome(right / len(expected), f"{right} of {len(expected)} cases right")


def keys_equal(got: Any, expected: dict[str, Any]) -> Outcome:
    """Partial credit per key of a probe's dict; feedback names the keys that differ."""
    if not isinstance(got, dict):
        return Outcome(0.0, "the probe got no result")
    wrong = [key for key, value in expected.items() if got.get(key) != value]
    right = len(expected) - len(wrong)
    feedback = (
        "all right" if not wrong else "not yet: " + ", ".join(k.replace("_", " ") for k in wrong)
    )
    return Outcome(right / len(expected), feedback)


def all_true(got: Any, expected: list[str]) -> Outcome:
    """Partial credit per property: ``expected`` names the keys that must be ``True``."""
    return keys_equal(got, dict.fromkeys(expected, True))


@dataclass(frozen=True)
class Question:
    id: str
    points: float
    title: str
    probe: str
    expected: Callable[[], Any]
    compare: Callable[[Any, Any], Outcome] = exact
    hint: str = ""
    # The student's globals the probe calls (``parse_lock``): watched while the probe runs,
    # and looked for on the host, for the exercise's forbidden references (see ``forbidden``).
    answers: tuple[str, ...] = ()


def forbidden(assignment: str, question: str) -> tuple[str, ...]:
    """The course_pkg code the answer to ``assignment.question`` must neither be nor run —
    registered with its self-check, so self-check and grade agree."""
    from course_pkg.checks import list_checks
    from course_pkg.checks._registry import FORBIDDEN

    list_checks()
    return FORBIDDEN.get(f"{assignment}.{question}", ())


@dataclass(frozen=True)
class Assignment:
    id: str
    notebook: str
    title: str
    questions: tuple[Question, ...]
    cell_timeout: int = 120  # seconds per cell
    probe_timeout: int | None = None  # seconds per probe (None: the cell timeout)
    wall_timeout: int = 300  # seconds for the whole container
    memory: str = "2g"
    pids: int = 256
    cpus: float = 1.0
    # Ids of the solution's demonstration cells that the grade never needs (no probe, and no
    # cell after them, uses what they define) and that cost time: the runner skips a cell
    # whose source is byte-for-byte one of these (so a student's edited, or new, cell runs).
    demo_cells: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_points(self) -> float:
        return sum(q.points for q in self.questions)
