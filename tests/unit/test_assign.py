"""grader assign: solutions → student notebooks, and the drift check that guards notebooks/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_pkg import paths
from grader.authoring.assign import (
    AuthoringError,
    assign,
    check_drift,
    make_student_notebook,
    render,
    strip_solutions,
)


def notebook(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=list(cells))
    for i, cell in enumerate(nb.cells):
        cell.id = f"c{i}"
    return nb


SOLVED = '''def add(a, b):
    """Add."""
    ### BEGIN SOLUTION
    return a + b
    ### END SOLUTION

print(add(1, 2))'''


def test_code_region_becomes_an_indented_stub() -> None:
    source, regions = strip_solutions(SOLVED, "code", "nb")
    assert regions == 1
    assert source == (
        'def add(a, b):\n    """Add."""\n    # YOUR CODE HERE\n    raise NotImplementedError\n'
        "\nprint(add(1, 2))"
    )


def test_markdown_region_becomes_an_answer_placeholder() -> None:
    source, _ = strip_solutions(
        "Q?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION", "markdown", "nb"
    )
    assert source == "Q?\n_YOUR ANSWER HERE_"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("### BEGIN SOLUTION\nx = 1", "never closed"),
        ("x = 1\n### END SOLUTION", "END SOLUTION without BEGIN"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside a solution"),
    ],
)
def test_unbalanced_markers_are_errors_naming_the_place(source: str, message: str) -> None:
    with pytest.raises(AuthoringError, match=message) as info:
        strip_solutions(source, "code", "01_formats.ipynb, cell 4")
    assert "01_formats.ipynb, cell 4" in str(info.value)


def test_student_notebook_drops_instructor_cells_outputs_and_counts() -> None:
    solved = nbformat.v4.new_code_cell(SOLVED, execution_count=3)
    solved.outputs = [nbformat.v4.new_output("stream", text="3\n")]
    solved.metadata = {"tags": ["keep-me"], "execution": {"iopub.status.busy": "2026"}}
    secret = nbformat.v4.new_code_cell("assert answer == 42", metadata={"tags": ["instructor"]})
    prose = nbformat.v4.new_markdown_cell("# Title")
    student = make_student_notebook(notebook(prose, solved, secret))

    assert [c.cell_type for c in student.cells] == ["markdown", "code"]
    code = student.cells[1]
    assert code.outputs == [] and code.execution_count is None
    assert code.metadata == {"tags": ["keep-me", "raises-exception"]}
    assert "return a + b" not in code.source
    assert student.metadata["kernelspec"]["name"] == "course-mlops"


def test_cells_without_solutions_are_not_tagged() -> None:
    student = make_student_notebook(notebook(nbformat.v4.new_code_cell("x = 1")))
    assert "tags" not in student.cells[0].metadata


def test_assign_is_deterministic_and_idempotent(tmp_path: Path) -> None:
    out = tmp_path / "notebooks"
    first = assign(paths.SOLUTIONS, out)
    snapshot = {p.name: p.read_bytes() for p in out.iterdir()}
    assert first and assign(paths.SOLUTIONS, out) == []
    assert {p.name: p.read_bytes() for p in out.iterdir()} == snapshot


def test_committed_student_notebooks_match_their_solutions() -> None:
    """The drift test: notebooks/ is exactly what `grader assign` writes from solutions/."""
    drift = check_drift(paths.SOLUTIONS, paths.NOTEBOOKS)
    assert drift == [], "run `make assign` and commit:\n" + "\n".join(
        f"{d.path}: {d.reason}" for d in drift
    )


def test_drift_is_detected_in_every_form(tmp_path: Path) -> None:
    solutions = tmp_path / "solutions"
    notebooks = tmp_path / "notebooks"
    shutil.copytree(paths.SOLUTIONS, solutions)
    assign(solutions, notebooks)
    assert check_drift(solutions, notebooks) == []

    target = sorted(notebooks.glob("*.ipynb"))[0]
    # a student notebook edited by hand
    target.write_text(target.read_text().replace("YOUR CODE HERE", "MY CODE HERE"))
    # a student notebook whose solution was deleted
    (notebooks / "99_orphan.ipynb").write_text(render(notebook()))
    # a solution without a student notebook
    shutil.copy(solutions / target.name, solutions / "98_new.ipynb")

    reasons = {d.path.name: d.reason for d in check_drift(solutions, notebooks)}
    assert reasons == {
        target.name: "differs from its solution",
        "99_orphan.ipynb": "has no solution in solutions/",
        "98_new.ipynb": "missing",
    }


def test_assign_check_cli_exits_1_on_drift_and_0_when_clean(tmp_path: Path) -> None:
    notebooks = tmp_path / "notebooks"
    cmd = [sys.executable, "-m", "grader.cli", "assign", "--out", str(notebooks)]
    missing = subprocess.run([*cmd, "--check"], capture_output=True, text=True, check=False)
    assert missing.returncode == 1 and "make assign" in missing.stderr
    subprocess.run(cmd, check=True, capture_output=True)
    clean = subprocess.run([*cmd, "--check"], capture_output=True, text=True, check=False)
    assert clean.returncode == 0, clean.stderr


def test_assign_cli_reports_authoring_errors_with_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "solutions"
    broken.mkdir()
    nbformat.write(
        notebook(nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1")), broken / "00_x.ipynb"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader.cli",
            "assign",
            "--solutions",
            str(broken),
            "--out",
            str(tmp_path / "nb"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "00_x.ipynb, cell 0" in result.stderr and "never closed" in result.stderr
