"""The module docstring examples written as doctests run, and say what they show.

Examples that need a model server, Docker or a browser stay prose (indented, no ``>>>``);
the modules listed here are the ones whose examples run offline in well under a second.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

RUNNABLE = ["course_pkg.kubernetes", "course_pkg.processes"]


@pytest.mark.parametrize("name", RUNNABLE)
def test_module_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0, f"{name} lists no example: drop it from RUNNABLE"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"
