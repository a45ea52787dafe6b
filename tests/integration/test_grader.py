"""The grader, for real: sample and hostile submissions in locked-down containers.

Uses assignment 00 with tighter limits so the whole suite stays within a few minutes. Each
hostile submission is the full solution (or the empty student version) plus one attack cell.
"""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
from pathlib import Path
from typing import Any

import nbformat
import pytest

from course_pkg import paths
from grader.grading import grade
from grader.runner.containers import CURRENT, LABEL
from grader.runner.docker_backend import run_docker
from grader.samples import HOSTILE_CELLS, full_solution, write_samples
from grader.specs import load_assignment

pytestmark = [pytest.mark.docker, pytest.mark.integration]

SPEC = dataclasses.replace(
    load_assignment("00"), cell_timeout=20, wall_timeout=60, memory="1g", pids=128
)
FULL = SPEC.total_points
# For submissions that attack nothing: notebook 00's package-size cell stats every installed
# file and took over 20 s on a loaded 2-core machine (other containers and builds running).
ROOMY = dataclasses.replace(SPEC, cell_timeout=90, wall_timeout=180)


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("submissions")
    write_samples("00_setup_check.ipynb", folder, hostile=False)
    return folder


def _attack(tmp_path: Path, name: str, base: str = "full") -> Path:
    notebook = full_solution("00_setup_check.ipynb")
    if base == "empty":
        notebook = nbformat.read(paths.NOTEBOOKS / "00_setup_check.ipynb", as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(HOSTILE_CELLS[name]))
    path = tmp_path / f"hostile_{name}.ipynb"
    nbformat.write(notebook, path)
    return path


def test_full_partial_empty_broken_and_non_notebook(grading_image: str, samples: Path) -> None:
    results = {p.name: grade(p, ROOMY, image=grading_image) for p in sorted(samples.iterdir())}
    assert results["full.ipynb"].status == "ok"
    assert results["full.ipynb"].score == FULL
    assert results["empty.ipynb"].status == "ok" and results["empty.ipynb"].score == 0
    assert "not done yet" in results["empty.ipynb"].questions[0].feedback
    partial = results["partial.ipynb"]
    assert partial.status == "ok" and 0 < partial.score < FULL
    assert results["syntax_broken.ipynb"].status == "invalid-notebook"
    assert results["not_a_notebook.txt"].status == "invalid-notebook"


# name → (base notebook, expected status, expected score: "full", 0 or a callable check)
HOSTILE: dict[str, tuple[str, str, Any]] = {
    "infinite_loop": ("full", "timeout", "full"),
    "sleep_past_timeout": ("full", "timeout", 0),
    "fork_bomb": ("full", "ok", "full"),
    "memory_bomb": ("full", "memory", 0),
    "output_flood": ("full", "output-limit", "full"),
    "disk_fill": ("full", "ok", "full"),
    "network": ("full", "ok", "full"),
    "read_host": ("full", "ok", FULL - 1),  # its port_is_free returns what it found: []
    "fake_results": ("empty", "ok", 0),
    "monkeypatch": ("empty", "ok", 0),
    "kill_kernel": ("full", "crashed", 0),
    "kill_runner": ("full", "ok", "full"),  # PID 1 ignores signals from inside its namespace
    "os_exit": ("full", "crashed", 0),
    "system_exit": ("full", "ok", "full"),
}


def test_every_hostile_sample_has_an_expectation() -> None:
    assert set(HOSTILE) == set(HOSTILE_CELLS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_submission_is_contained(name: str, grading_image: str, tmp_path: Path) -> None:
    base, status, score = HOSTILE[name]
    path = _attack(tmp_path, name, base)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    result = grade(path, SPEC, image=grading_image)
    assert result.status == status, (result.status, result.detail)
    assert result.score == (FULL if score == "full" else score), result.questions
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # mounted read-only
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # nothing written beside it
    leftovers = subprocess.run(  # only this test run's containers: the engine is shared
        ["docker", "ps", "-aq", "--filter", f"label={LABEL}={CURRENT.value}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert leftovers.stdout.strip() == ""  # every container was removed


def test_read_host_finds_nothing(grading_image: str, tmp_path: Path) -> None:
    run = run_docker(_attack(tmp_path, "read_host"), SPEC, image=grading_image)
    assert run.result is not None
    # its port_is_free returns what it found, twice: no spec, no gradebook, no secrets
    assert run.result["probes"]["port_is_free"] == {"value": [[], []], "delegated": []}


def test_fake_frames_are_ignored(grading_image: str, tmp_path: Path) -> None:
    run = run_docker(_attack(tmp_path, "fake_results", "empty"), SPEC, image=grading_image)
    assert run.result is not None and "probes" in run.result
    assert run.result["probes"]["sha256_file"]["error"].startswith("NotImplementedError")


def test_batch_cli_resumes_and_keeps_other_scores(grading_image: str, tmp_path: Path) -> None:
    import csv
    import sys

    submissions = tmp_path / "in"
    submissions.mkdir()
    write_samples("00_setup_check.ipynb", submissions, hostile=False)
    _attack(submissions, "kill_kernel").rename(submissions / "zz_killer.ipynb")
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "grader.cli",
        "grade",
        str(submissions),
        "--assignment",
        "00",
        "--out",
        str(out),
        "--jobs",
        "2",
        "--cell-timeout",
        str(ROOMY.cell_timeout),
        "--timeout",
        str(ROOMY.wall_timeout),
    ]
    first = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    assert first.returncode == 0, first.stderr
    rows = {
        r["submission"]: r for r in csv.DictReader((out / "gradebook.csv").read_text().splitlines())
    }
    assert rows["full"]["total"] == "7" and rows["full"]["status"] == "ok"
    assert rows["zz_killer"]["status"] == "crashed" and rows["zz_killer"]["total"] == "0"
    assert rows["syntax_broken"]["status"] == "invalid-notebook"
    assert (out / "full" / "feedback.md").read_text().startswith("# 00 · Setup check")
    report = (out / "full" / "results.json").read_text()
    assert '"max_score": 2' in report and '"score": 7' in report
    again = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    assert f"skipping {len(rows)} already graded" in again.stdout
