"""Stored solution outputs show the course, not the machine that executed them.

A student reads the outputs committed in solutions/ (and the instructor's rendered copies):
a path into the author's home, virtualenv or checkout, or a random temporary directory, is
noise that differs on every machine and leaks where the author works; a warning on stderr
is third-party noise that should be silenced where it starts (an environment variable, a
logger level, a warnings filter), never by editing outputs.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from course_pkg import paths

SOLUTIONS = sorted(p.name for p in paths.SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))

MACHINE_PATHS = re.compile(
    "|".join(
        [
            r"/home/[^\s/'\"]+",  # a home directory
            r"/root/",  # root's home
            r"/Users/[^\s/'\"]+",  # a macOS home
            r"\S*site-packages",  # an interpreter's install tree
            r"/work/\S*",  # this workplace's checkouts
            re.escape(str(paths.ROOT)),  # the checkout that executed the notebook
            re.escape(str(Path.home())) + r"/",  # whoever runs this test
            r"/tmp/[^\s'\"]+",  # temporary directories: random names, different every run
        ]
    )
)

# Paths that are not the machine's: they name places inside an image the notebook builds.
INSIDE_AN_IMAGE = re.compile(
    r"/opt/venv/lib/python3\.\d+/site-packages|/tmp/requirements-serve\.lock"
)

# The one thing stderr may carry: a tqdm progress bar ("131krows [00:00, 188krows/s]").
# Anything else there is a warning — Python's (``TqdmWarning: ...``) or a library logger's
# (``OpenVINO is not enabled``) — and is silenced where it starts.
PROGRESS_BAR = re.compile(r"^\s*[\d.]+[kMG]?\w* \[[\d:]+(<[\d:?]+)?, [^\]]*\]\s*$")


def warnings_on_stderr(text: str) -> list[str]:
    """The lines of a stderr output that are not progress bars."""
    lines = [line for line in re.split(r"[\r\n]+", text) if line.strip()]
    return [line for line in lines if not PROGRESS_BAR.match(line)]


def _texts(output: nbformat.NotebookNode) -> list[tuple[str, str]]:
    if output.output_type == "stream":
        return [(output.name, output.text)]
    if output.output_type in ("execute_result", "display_data"):
        return [(kind, text) for kind, text in output.data.items() if kind.startswith("text/")]
    if output.output_type == "error":
        return [("traceback", "\n".join(output.traceback))]
    return []


def _outputs(notebook: str) -> list[tuple[str, str, str]]:
    """(cell id, stream or MIME type, text) for every stored text output."""
    cells = nbformat.read(paths.SOLUTIONS / notebook, as_version=4).cells
    return [
        (cell.get("id", "?"), kind, text)
        for cell in cells
        for output in cell.get("outputs", [])
        for kind, text in _texts(output)
    ]


def machine_paths(text: str) -> list[str]:
    """The machine-specific paths in one output's text."""
    return [m.group(0) for m in MACHINE_PATHS.finditer(INSIDE_AN_IMAGE.sub("", text))]


@pytest.mark.parametrize("notebook", SOLUTIONS)
def test_no_stored_output_holds_a_machine_path(notebook: str) -> None:
    found = [
        f"cell {cell} ({kind}): {path}"
        for cell, kind, text in _outputs(notebook)
        for path in machine_paths(text)
    ]
    assert not found, f"{notebook} stores machine paths:\n" + "\n".join(found)


@pytest.mark.parametrize("notebook", SOLUTIONS)
def test_no_stored_output_has_a_warning_on_stderr(notebook: str) -> None:
    found = [
        f"cell {cell}: {line[:160]}"
        for cell, kind, text in _outputs(notebook)
        if kind == "stderr"
        for line in warnings_on_stderr(text)
    ]
    assert not found, f"{notebook} stores warnings on stderr:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("/work/wt/20/.venv/lib/python3.11/site-packages/tqdm/auto.py:21", True),
        ("peak memory 712 MB → /tmp/nb05-krzmfhm9/scored.parquet", True),
        ("3.11.7 (/home/ada/course/.venv/bin/python)", True),
        (f"sys.prefix = {paths.ROOT}/.venv", True),
        ("COPY requirements-serve.lock /tmp/requirements-serve.lock", False),
        ("cd /opt/venv/lib/python3.11/site-packages", False),
        ("POST /v1/models/churn/predict: 200", False),
    ],
)
def test_the_path_scan_tells_machine_paths_from_course_paths(text: str, flagged: bool) -> None:
    assert bool(machine_paths(text)) is flagged


def test_the_stderr_scan_finds_warnings_and_lets_progress_bars_through() -> None:
    assert warnings_on_stderr("auto.py:21: TqdmWarning: IProgress not found\n  from x import y")
    assert warnings_on_stderr("Torch TensorRT not enabled\n") == ["Torch TensorRT not enabled"]
    assert warnings_on_stderr("\r0.00rows [00:00, ?rows/s]\r131krows [00:00, 188krows/s] \n") == []
