"""Handing in course_pkg's own implementation scores 0 — through the real ``grader grade``,
in containers — and leaves every other question's score as it was.

Three routes for notebook 00: a plain delegation (the host's reading of the source and the
in-sandbox watch both see it), one hidden from a reader (names built at run time: only the
watch sees it) and one that switches the watch off (only the host's reading sees it). Then,
for every other graded notebook, one grading run over its solution (full marks), its student
version (zero) and the plain delegation of every forbidden reference (zero on those questions).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_pkg import paths
from grader.samples import (
    BLINDED_DELEGATION,
    DELEGATIONS,
    HIDDEN_DELEGATION,
    delegating,
    full_solution,
)
from grader.specs import load_assignment
from grader.specs.model import forbidden

pytestmark = [pytest.mark.docker, pytest.mark.integration]

GRADER = [str(Path(sys.executable).parent / "grader")]


def _grade(
    submissions: Path, assignment: str, image: str, out: Path, jobs: int = 1
) -> dict[str, dict]:
    env = {**os.environ, "COURSE_GRADER_IMAGE": image}
    command = ["grade", str(submissions), "--assignment", assignment, "--out", str(out)]
    done = subprocess.run(
        [*GRADER, *command, "--jobs", str(jobs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = {}
    for row in csv.DictReader((out / "gradebook.csv").read_text().splitlines()):
        record = json.loads((out / row["submission"] / "results.json").read_text())
        results[row["submission"]] = record["extra_data"]["course"]
    return results


def _scores(record: dict) -> dict[str, float]:
    return {q["id"]: q["score"] for q in record["questions"]}


def test_delegating_to_course_pkg_scores_zero_by_every_route(
    grading_image: str, tmp_path: Path
) -> None:
    spec = load_assignment("00")
    notebook = spec.notebook
    submissions = tmp_path / "subs"
    submissions.mkdir()
    for name, source in (
        ("plain", DELEGATIONS["00"]),
        ("hidden", HIDDEN_DELEGATION),
        ("blinded", BLINDED_DELEGATION),
    ):
        nbformat.write(delegating(notebook, source), submissions / f"{name}.ipynb")
    nbformat.write(delegating(notebook, "x = 1"), submissions / "honest.ipynb")
    results = _grade(submissions, "00", grading_image, tmp_path / "out")

    honest = _scores(results["honest"])
    assert sum(honest.values()) == spec.total_points
    plain = _scores(results["plain"])
    assert plain == dict.fromkeys(honest, 0.0), results["plain"]["questions"]
    for route in ("hidden", "blinded"):
        scores = _scores(results[route])
        assert scores["parse_lock"] == 0.0, (route, results[route]["questions"])
        assert {k: v for k, v in scores.items() if k != "parse_lock"} == {
            k: v for k, v in honest.items() if k != "parse_lock"
        }
        feedback = next(q for q in results[route]["questions"] if q["id"] == "parse_lock")
        assert "calls course_pkg.preflight.parse_lock" in feedback["feedback"]


GRADED = ["01", "02", "03", "04", "05", "06", "07", "08", "09"]


@pytest.mark.slow
@pytest.mark.timeout(1800)  # notebook 07 runs ~10 min in its container on a busy 2-core machine
@pytest.mark.parametrize("assignment", GRADED)
def test_every_spec_gives_the_solution_full_marks_and_zeroes_delegation_and_the_empty_notebook(
    assignment: str, grading_image: str, tmp_path: Path
) -> None:
    # One `grader grade --jobs 2` per notebook over three submissions (each container takes
    # one core): the solution, the untouched student notebook, and the solution plus a cell
    # that delegates every question with a forbidden reference to course_pkg.
    spec = load_assignment(assignment)
    submissions = tmp_path / "subs"
    submissions.mkdir()
    nbformat.write(full_solution(spec.notebook), submissions / "full.ipynb")
    shutil.copy(paths.NOTEBOOKS / spec.notebook, submissions / "empty.ipynb")
    nbformat.write(
        delegating(spec.notebook, DELEGATIONS[assignment]), submissions / "delegating.ipynb"
    )
    results = _grade(submissions, assignment, grading_image, tmp_path / "out", jobs=2)

    full = _scores(results["full"])
    assert sum(full.values()) == spec.total_points, results["full"]["questions"]
    assert sum(_scores(results["empty"]).values()) == 0, results["empty"]["questions"]
    delegated = {q.id for q in spec.questions if forbidden(spec.id, q.id) and q.answers}
    assert delegated, f"{assignment}: no graded question names its forbidden references"
    for question in results["delegating"]["questions"]:
        if question["id"] in delegated:
            assert question["score"] == 0.0, question
            assert "the exercise is to write it" in question["feedback"], question
        else:  # untouched answers keep full marks
            assert question["score"] == question["max_score"], question
