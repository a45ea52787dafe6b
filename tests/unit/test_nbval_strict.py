"""The lax-mode rule for student notebooks: stub cells may raise NotImplementedError only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_pkg import paths


def run_lax(tmp_path: Path, stub_source: str) -> subprocess.CompletedProcess[str]:
    cell = nbformat.v4.new_code_cell(stub_source, metadata={"tags": ["raises-exception"]})
    after = nbformat.v4.new_code_cell("print('the notebook went on')")
    notebook = nbformat.v4.new_notebook(cells=[cell, after])
    path = tmp_path / "student.ipynb"
    nbformat.write(notebook, path)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "conftest",
            "--nbval-lax",
            "--nbval-current-env",
            "-q",
            "-p",
            "no:cacheprovider",
            str(path),
        ],
        cwd=paths.ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.slow
def test_not_implemented_stub_passes(tmp_path: Path) -> None:
    result = run_lax(tmp_path, "# YOUR CODE HERE\nraise NotImplementedError")
    assert result.returncode == 0, result.stdout


@pytest.mark.slow
def test_any_other_exception_fails(tmp_path: Path) -> None:
    result = run_lax(tmp_path, "undefined_name + 1")
    assert result.returncode == 1
    assert "may only raise NotImplementedError, got NameError" in result.stdout
