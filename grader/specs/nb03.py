"""Hidden grading spec for notebook 03 (ONNX export)."""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.specs.model import Assignment, Outcome, Question

EXPORT_PROBE = """
def probe():
    from course_pkg.checks.nb03 import exercise_pipeline, grade_export
    pipeline, frame = exercise_pipeline()
    return grade_export(export_pipeline(pipeline, frame.head(20)), pipeline, frame)
"""

PARITY_PROBE = """
def probe():
    from course_pkg.checks.nb03 import parity_cases
    results = []
    for _, pipeline, model, frame in parity_cases():
        got = parity_report(pipeline, model, frame)
        results.append({k: float(got[k]) for k in ("label_agreement", "max_abs_diff")})
    return results
"""

CLIP_PROBE = """
def probe():
    from course_pkg.checks.nb03 import clip_pipeline
    from course_pkg.onnx_export import check_parity, export_sklearn
    from course_pkg.onnx_export.custom import register_clip_converter
    pipeline, frame = clip_pipeline()
    register_clip_converter(convert_clip)
    try:
        model = export_sklearn(pipeline, frame, verify=False)
    except Exception:
        return {"converts": False, "parity": False}
    return {"converts": True, "parity": check_parity(pipeline, model, frame).ok}
"""

OPSET_PROBE = """
def probe():
    return int(max_opset())
"""


def _share_true(got: Any, expected: dict[str, bool]) -> Outcome:
    if not isinstance(got, dict):
        return Outcome(0.0, "the probe got no result")
    right = [key for key in expected if got.get(key) is True]
    missing = [key.replace("_", " ") for key in expected if key not in right]
    feedback = "all properties hold" if not missing else "not yet: " + ", ".join(missing)
    return Outcome(len(right) / len(expected), feedback)


def _parity_expected() -> list[dict[str, float]]:
    from course_pkg.checks.nb03 import parity_cases
    from course_pkg.onnx_export import check_parity

    reports = [check_parity(p, m, f) for _, p, m, f in parity_cases()]
    return [
        {"label_agreement": r.label_agreement, "max_abs_diff": r.max_abs_proba_diff}
        for r in reports
    ]


def _parity_compare(got: Any, expected: list[dict[str, float]]) -> Outcome:
    if not isinstance(got, list) or len(got) != len(expected):
        return Outcome(0.0, "parity_report must return a dict for each case")
    labels = ("an exact export", "a float32 export whose splits flip")
    right, wrong = 0, []
    for label, g, e in zip(labels, got, expected, strict=True):
        ok = all(np.isclose(g.get(k, np.nan), v, rtol=1e-3, atol=1e-6) for k, v in e.items())
        right += ok
        if not ok:
            wrong.append(label)
    return Outcome(right / len(expected), "both cases right" if not wrong else f"wrong on {wrong}")


def _opset_expected() -> int:
    from course_pkg.onnx_export import runtime_max_opset

    return runtime_max_opset()


def _opset_compare(got: Any, expected: int) -> Outcome:
    if got == expected:
        return Outcome(1.0, "correct")
    if isinstance(got, int) and got < expected:
        return Outcome(0.5, "that opset loads, but a newer one does too")
    return Outcome(0.0, "onnxruntime cannot load that opset")


ASSIGNMENT = Assignment(
    id="03",
    notebook="03_onnx_export.ipynb",
    title="ONNX export",
    # Demonstrations no probe needs (a test checks nothing later reads what only they bind),
    # skipped while unchanged: §4's PyTorch digits network trained and exported (~6 s)
    demo_cells=("cd53457c",),
    questions=(
        Question(
            "export_pipeline",
            3,
            "Export a given pipeline",
            EXPORT_PROBE,
            lambda: dict.fromkeys(
                ("one_input_per_column", "strings_stay_strings", "no_zipmap", "parity"), True
            ),
            _share_true,
            hint="one typed input per column; zipmap off",
            answers=("export_pipeline",),
        ),
        Question(
            "parity_report",
            2,
            "Write a parity check",
            PARITY_PROBE,
            _parity_expected,
            _parity_compare,
            hint="labels equal share; max |Δp| over every row and class",
            answers=("parity_report",),
        ),
        Question(
            "convert_clip",
            3,
            "Fix a failing conversion",
            CLIP_PROBE,
            lambda: {"converts": True, "parity": True},
            _share_true,
            hint="Max(Min(X, upper), lower) in the input's dtype",
        ),
        Question(
            "max_opset",
            2,
            "Choose an opset",
            OPSET_PROBE,
            _opset_expected,
            _opset_compare,
            hint="try loading, newest first",
            answers=("max_opset",),
        ),
    ),
    cell_timeout=180,
    wall_timeout=420,
)
