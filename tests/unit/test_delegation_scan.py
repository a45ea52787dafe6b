"""The host's static reading of a submission: nothing in the course's own solutions or
student notebooks is flagged; every delegation in grader.samples.DELEGATIONS is."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from course_pkg import paths
from grader.grading import _copied
from grader.samples import DELEGATIONS, HIDDEN_DELEGATION, delegating, full_solution
from grader.specs import load_assignment
from grader.specs.model import forbidden

ALL = ["00", "01", "02", "03", "04", "05", "06", "07", "08", "09"]


@pytest.mark.parametrize("assignment", ALL)
def test_solutions_and_student_notebooks_are_not_flagged(assignment: str, tmp_path: Path) -> None:
    spec = load_assignment(assignment)
    full = tmp_path / "full.ipynb"
    nbformat.write(full_solution(spec.notebook), full)
    empty = tmp_path / "empty.ipynb"
    shutil.copy(paths.NOTEBOOKS / spec.notebook, empty)
    assert _copied(full, spec) == {}
    assert _copied(empty, spec) == {}


@pytest.mark.parametrize("assignment", sorted(DELEGATIONS))
def test_every_delegated_answer_is_read_on_the_host(assignment: str, tmp_path: Path) -> None:
    spec = load_assignment(assignment)
    path = tmp_path / "delegating.ipynb"
    nbformat.write(delegating(spec.notebook, DELEGATIONS[assignment]), path)
    want = {q.id for q in spec.questions if q.answers and forbidden(spec.id, q.id)}
    assert set(_copied(path, spec)) == want


def test_names_built_at_run_time_are_left_to_the_sandbox_watch(tmp_path: Path) -> None:
    spec = load_assignment("00")
    path = tmp_path / "hidden.ipynb"
    nbformat.write(delegating(spec.notebook, HIDDEN_DELEGATION), path)
    assert _copied(path, spec) == {}  # tests/integration/test_grader_delegation.py: still 0
