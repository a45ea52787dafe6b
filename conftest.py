"""Repository-wide pytest hooks: stricter than nbval's lax mode for student notebooks.

``grader assign`` tags every stubbed cell ``raises-exception`` so nbval lets it raise. Any
exception would then pass; in lax mode (how notebooks/ runs) we insist it is the stub's own
``NotImplementedError`` — an untouched student cell that raises anything else is a course bug.
Solutions run in strict mode, where a tagged cell may demonstrate any error on purpose.
"""

from __future__ import annotations

import os

# onnxruntime telemetry off for the test process and every subprocess/kernel it starts
# (course_pkg/__init__.py explains); set before anything imports onnxruntime.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"
from collections.abc import Generator
from typing import Any

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    result = yield
    lax = getattr(item.config.option, "nbval_lax", False)
    outputs = getattr(item, "test_outputs", None) or []
    wrong = [
        o
        for o in outputs
        if o.get("output_type") == "error" and o.get("ename") != "NotImplementedError"
    ]
    if lax and wrong:
        pytest.fail(
            f"a stub cell may only raise NotImplementedError, got "
            f"{wrong[0].get('ename')}: {wrong[0].get('evalue')}",
            pytrace=False,
        )
    return result
