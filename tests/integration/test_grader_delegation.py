"""Handing in course_pkg's own implementation scores 0 — through the real ``grader grade``,
in containers — and leaves every other question's score as it was.

Three routes for notebook 00: a plain delegation (the host's reading of the source and the
in-sandbox watch both see it), one hidden from a reader (names built at run time: only the
watch sees it) and one that switches the watch off (only the host's reading sees it). Then,
for every graded notebook with forbidden references, the plain delegation of all of them.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from grader.samples import BLINDED_DELEGATION, DELEGATIONS, HIDDEN_DELEGATION, delegating
from grader.specs import load_assignment
from grader.specs.model import forbidden

pytestmark = [pytest.mark.docker, pytest.mark.integration]

GRADER = [str(Path(sys.executable).parent / "grader")]


def _grade(submissions: Path, assignment: str, image: str, out: Path) -> dict[str, dict]:
    env = {**os.environ, "COURSE_GRADER_IMAGE": image}
    done = subprocess.run(
        [*GRADER, "grade", str(submissions), "--assignment", assignment, "--out", str(out)],
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


@pytest.mark.timeout(2400)  # nine gradings, two at a time, on a 2-core machine
def test_every_graded_notebook_zeroes_its_delegated_questions(
    grading_image: str, tmp_path: Path
) -> None:
    # One grade run per notebook, two at a time (each container takes one core): the nine
    # runs in sequence were the longest stretch of the suite.
    def grade(assignment: str) -> dict:
        spec = load_assignment(assignment)
        submissions = tmp_path / assignment / "subs"
        submissions.mkdir(parents=True)
        nbformat.write(
            delegating(spec.notebook, DELEGATIONS[assignment]), submissions / "delegating.ipynb"
        )
        return _grade(submissions, assignment, grading_image, tmp_path / assignment / "out")

    with ThreadPoolExecutor(max_workers=2) as pool:
        records = dict(zip(GRADED, pool.map(grade, GRADED), strict=True))
    for assignment, results in records.items():
        spec = load_assignment(assignment)
        delegated = {q.id for q in spec.questions if forbidden(spec.id, q.id) and q.answers}
        assert delegated, f"{assignment}: no graded question names its forbidden references"
        for question in results["delegating"]["questions"]:
            where = (assignment, question)
            if question["id"] in delegated:
                assert question["score"] == 0.0, where
                assert "the exercise is to write it" in question["feedback"], where
            else:  # untouched answers keep full marks
                assert question["score"] == question["max_score"], where
