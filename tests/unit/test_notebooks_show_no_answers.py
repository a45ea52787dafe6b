"""Student notebooks do not hand students the answer key.

A student notebook's code (instructor-only cells are not in it) must not import or use any
forbidden reference of its own exercises — the course_pkg code an answer must not delegate
to — except what the notebook deliberately teaches (registered as ``taught``, e.g. 03's
``export_sklearn``: using it in the answer is still caught by the check and the grader).
Nor may it import what exists only to judge an exercise.
"""

from __future__ import annotations

import nbformat
import pytest

from course_pkg import paths
from course_pkg.checks import list_checks
from course_pkg.checks._registry import FORBIDDEN, TAUGHT
from grader.delegation_scan import referenced

NOTEBOOKS = sorted(p.name for p in paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _code(notebook: str) -> list[str]:
    cells = nbformat.read(paths.NOTEBOOKS / notebook, as_version=4).cells
    return [c.source for c in cells if c.cell_type == "code"]


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_student_notebook_imports_no_forbidden_reference(notebook: str) -> None:
    list_checks()
    prefix = notebook[:2] + "."
    forbidden = {n for e, names in FORBIDDEN.items() if e.startswith(prefix) for n in names}
    taught = {n for e, names in TAUGHT.items() if e.startswith(prefix) for n in names}
    found = set(referenced(_code(notebook), sorted(forbidden)))
    assert found <= taught, f"{notebook} shows students {sorted(found - taught)}"


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
