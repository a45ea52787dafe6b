"""solutions/NN_topic.ipynb → notebooks/NN_topic.ipynb, deterministically.

Rules (also in docs/ARCHITECTURE.md, "Authoring"):
- In code cells, each ``### BEGIN SOLUTION`` … ``### END SOLUTION`` region becomes
  ``# YOUR CODE HERE`` + ``raise NotImplementedError`` at the marker's indentation.
- In markdown cells the region becomes ``_YOUR ANSWER HERE_``.
- Cells tagged ``instructor`` are dropped (CI assertions, answer keys, grading notes).
- Code cells that lost a solution get the ``raises-exception`` tag, so nbval's lax mode lets
  them raise; ``tests/notebooks/conftest.py`` then insists the exception is NotImplementedError.
- Outputs, execution counts and execution metadata are cleared; cell ids and notebook-level
  metadata other than kernelspec are kept / dropped so the output depends only on the source.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

BEGIN = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION[ \t]*$")
END = re.compile(r"^[ \t]*### END SOLUTION[ \t]*$")
INSTRUCTOR_TAG = "instructor"
STUB_TAG = "raises-exception"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError")
MARKDOWN_STUB = "_YOUR ANSWER HERE_"
KERNELSPEC = {"name": "course-mlops", "display_name": "Python (course-mlops)", "language": "python"}
_KEEP_CELL_METADATA = ("tags",)


class AuthoringError(ValueError):
    """A solution notebook breaks an authoring rule; the message names notebook and cell."""


@dataclass(frozen=True)
class Drift:
    path: Path
    reason: str


def strip_solutions(source: str, cell_type: str, where: str) -> tuple[str, int]:
    """Replace every solution region in one cell's source; returns (new source, regions)."""
    out: list[str] = []
    regions = 0
    inside: str | None = None  # the indentation of the open BEGIN marker
    for number, line in enumerate(source.splitlines(), start=1):
        begin = BEGIN.match(line)
        if begin:
            if inside is not None:
                raise AuthoringError(f"{where}, line {number}: BEGIN SOLUTION inside a solution")
            inside = begin.group("indent")
            regions += 1
            if cell_type == "code":
                out.extend(inside + stub for stub in CODE_STUB)
            else:
                out.append(inside + MARKDOWN_STUB)
        elif END.match(line):
            if inside is None:
                raise AuthoringError(f"{where}, line {number}: END SOLUTION without BEGIN")
            inside = None
        elif inside is None:
            out.append(line)
    if inside is not None:
        raise AuthoringError(f"{where}: BEGIN SOLUTION is never closed by END SOLUTION")
    return "\n".join(out), regions


def make_student_notebook(solution: Any, name: str = "<notebook>") -> Any:
    """The student version of a solution notebook (a new ``NotebookNode``)."""
    student = nbformat.v4.new_notebook()
    student.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    for index, cell in enumerate(solution.cells):
        tags = list(cell.get("metadata", {}).get("tags", []))
        if INSTRUCTOR_TAG in tags:
            continue
        where = f"{name}, cell {index}"
        source, regions = strip_solutions(cell.source, cell.cell_type, where)
        new = copy.deepcopy(cell)
        new.source = source
        new.metadata = {
            k: v for k, v in cell.get("metadata", {}).items() if k in _KEEP_CELL_METADATA
        }
        if cell.cell_type == "code":
            new.outputs = []
            new.execution_count = None
            if regions and STUB_TAG not in tags:
                tags.append(STUB_TAG)
        if tags:
            new.metadata["tags"] = tags
        student.cells.append(new)
    return student


def render(notebook: Any) -> str:
    """Serialise the way the drift check compares: nbformat's canonical JSON, final newline."""
    text: str = nbformat.writes(notebook, version=4)
    return text if text.endswith("\n") else text + "\n"


def expected_outputs(solutions: Path, notebooks: Path) -> dict[Path, str]:
    """Every student notebook ``assign`` would write, with its exact text."""
    result: dict[Path, str] = {}
    for path in sorted(solutions.glob("*.ipynb")):
        solution = nbformat.read(path, as_version=4)
        result[notebooks / path.name] = render(make_student_notebook(solution, path.name))
    return result


def assign(solutions: Path, notebooks: Path) -> list[Path]:
    """Write notebooks/ from solutions/; remove student notebooks whose solution is gone."""
    expected = expected_outputs(solutions, notebooks)
    notebooks.mkdir(parents=True, exist_ok=True)
    written = []
    for path, text in expected.items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    for stale in sorted(set(notebooks.glob("*.ipynb")) - set(expected)):
        stale.unlink()
        written.append(stale)
    return written


def check_drift(solutions: Path, notebooks: Path) -> list[Drift]:
    """What differs between notebooks/ and what ``assign`` would write (empty: in sync)."""
    expected = expected_outputs(solutions, notebooks)
    drift = [
        Drift(path, "missing" if not path.exists() else "differs from its solution")
        for path, text in expected.items()
        if not path.exists() or path.read_text() != text
    ]
    drift += [
        Drift(stale, "has no solution in solutions/")
        for stale in sorted(set(notebooks.glob("*.ipynb")) - set(expected))
    ]
    return drift
