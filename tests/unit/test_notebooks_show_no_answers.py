"""Student notebooks do not hand students the answer key.

A student notebook's code (instructor-only cells are not in it) must not import or use a
forbidden reference of one of its exercises — the course_pkg code an answer must not delegate
to — before that exercise's check: students write it first, and only then meet the course's
version as "how we automate it" (03's ``export_sklearn`` after exercise 1, 08's
``plan_capacity`` after exercise 3). Using it in an answer afterwards is still caught, by the
self-check and by the grader. Nor may the notebook import what exists only to judge.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from course_pkg import paths
from course_pkg.checks import list_checks
from course_pkg.checks._registry import FORBIDDEN
from grader.delegation_scan import referenced

NOTEBOOKS = sorted(p.name for p in paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _code(notebook: str) -> list[str]:
    cells = nbformat.read(paths.NOTEBOOKS / notebook, as_version=4).cells
    return [c.source for c in cells if c.cell_type == "code"]


def _exercise_cells(notebook: str) -> dict[str, int]:
    """exercise id → index (among code cells) of the first cell that runs its check."""
    at: dict[str, int] = {}
    for i, source in enumerate(_code(notebook)):
        for exercise in re.findall(r"""check\(\s*["'](\d\d\.\w+)["']""", source):
            at.setdefault(exercise, i)
    return at


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_no_forbidden_reference_before_its_exercise(notebook: str) -> None:
    list_checks()
    cells, checks = _code(notebook), _exercise_cells(notebook)
    for exercise, names in sorted(FORBIDDEN.items()):
        if not exercise.startswith(notebook[:2] + ".") or not names:
            continue
        assert exercise in checks, f"{notebook} never runs check({exercise!r})"
        shown = referenced(cells[: checks[exercise] + 1], names)
        assert not shown, (
            f"{notebook} shows students {shown} before {exercise} asks them to write it"
        )


def test_the_rule_sees_a_reference_imported_before_the_exercise() -> None:
    forbidden = ("course_pkg.canary.verdict",)
    before = ["from course_pkg import canary", "canary.verdict", 'check("08.canary_verdict", f)']
    after = ['check("08.canary_verdict", f)', "from course_pkg.canary import verdict"]
    assert referenced(before[:2], forbidden) == list(forbidden)
    assert referenced(after[:1], forbidden) == []


def test_the_scan_finds_what_a_notebook_could_import() -> None:
    forbidden = ["course_pkg.preflight.parse_lock", "course_pkg.canary.verdict"]
    cells = [
        "from course_pkg import preflight as p",
        "x = p.parse_lock('a==1')",
        "from course_pkg.canary import verdict as v",
    ]
    assert sorted(referenced(cells, forbidden)) == sorted(forbidden)
    assert referenced(["from course_pkg.datasets import verify_sums"], forbidden) == []


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_student_notebook_imports_nothing_that_only_judges(notebook: str) -> None:
    for source in _code(notebook):
        for word in ("reference_", "ACCEPTABLE_FORMATS", "rollout_expected", "_expected"):
            assert word not in source, f"{notebook}: {source[:200]}"
