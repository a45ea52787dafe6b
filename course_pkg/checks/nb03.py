"""Self-checks for notebook 03 (ONNX export), and the exercise data the grader's probes reuse.

No answer lives here: the checks judge by properties (03.export_pipeline), by the course's
own parity code and runtime as oracles, and the reference converter lives with the grader.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from course_pkg.checks._registry import CheckFailed, callable_answer, expect, register


@cache
def exercise_data() -> tuple[Any, Any, Any, Any]:
    """(X_train, X_test, y_train, y_test) of the churn data — cached, read-only use."""
    from course_pkg.datasets import load_churn, split_churn

    return split_churn(load_churn())


def exercise_pipeline() -> tuple[Any, Any]:
    """(fitted pipeline, held-out frame) for exercise 1: a *different* pipeline than the
    notebook's, so an answer must handle any column list, not hard-code the churn one."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x_train, x_test, y_train, _ = exercise_data()
    columns = ["contract", "tenure_months", "internet_service", "monthly_charges"]
    pipeline = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        (
                            "cat",
                            OneHotEncoder(handle_unknown="ignore"),
                            ["contract", "internet_service"],
                        ),
                        ("num", StandardScaler(), ["tenure_months", "monthly_charges"]),
                    ]
                ),
            ),
            ("model", LogisticRegression(C=0.5, max_iter=500)),
        ]
    ).fit(x_train[columns], y_train)
    return pipeline, x_test[columns]


def _as_bytes(model: Any) -> bytes:
    if isinstance(model, bytes):
        return model
    expect(
        hasattr(model, "SerializeToString"),
        f"return an onnx.ModelProto (what skl2onnx.to_onnx gives), got {type(model).__name__}",
    )
    return bytes(model.SerializeToString())


def grade_export(model: Any, pipeline: Any, frame: Any) -> dict[str, bool]:
    """The properties exercise 1 asks for, each True/False (shared with the grader)."""
    from course_pkg.onnx_export import OnnxPredictor, check_parity, describe

    data = _as_bytes(model)
    summary = describe(data)
    inputs = [(name, kind) for name, kind, _ in summary.inputs]
    strings = {c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c].dtype)}
    try:
        parity = check_parity(pipeline, OnnxPredictor(data), frame).ok
    except Exception:  # a graph that cannot run has no parity
        parity = False
    return {
        "one_input_per_column": [n for n, _ in inputs] == list(frame.columns),
        "strings_stay_strings": all((k == "string") == (n in strings) for n, k in inputs),
        "no_zipmap": not any("ZipMap" in op for op in summary.node_counts),
        "parity": parity,
    }


@register(
    "03.export_pipeline",
    forbidden=("course_pkg.onnx_export.sklearn_export.export_sklearn",),
)
def _export_pipeline(answer: Any) -> str:
    fn = callable_answer(answer, "export_pipeline")
    pipeline, frame = exercise_pipeline()
    result = grade_export(fn(pipeline, frame.head(20)), pipeline, frame)
    hints = {
        "one_input_per_column": "declare one input per column, named like the column, in order",
        "strings_stay_strings": "text columns need StringTensorType, numbers FloatTensorType",
        "no_zipmap": "pass options={'zipmap': False} so probabilities are a plain tensor",
        "parity": "the graph's predictions differ from the pipeline's (or it does not run)",
    }
    for key, ok in result.items():
        expect(ok, hints[key])
    return "one typed input per column, plain probabilities, same predictions"


@cache
def parity_cases() -> list[tuple[str, Any, Any, Any]]:
    """(label, pipeline, onnx bytes, frame): an exact export and a broken (float32) one —
    cached (a forest and two exports: ~1 s), read-only use."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    from course_pkg.onnx_export import TARGET_OPSET, export_sklearn
    from course_pkg.training import build_churn_pipeline

    x_train, x_test, y_train, _ = exercise_data()
    forest = build_churn_pipeline("random_forest").set_params(model__n_estimators=20)
    forest.fit(x_train, y_train)
    frame = x_test.head(400)
    good = export_sklearn(forest, frame).SerializeToString()
    types = [
        (
            c,
            FloatTensorType([None, 1])
            if pd.api.types.is_numeric_dtype(d)
            else StringTensorType([None, 1]),
        )
        for c, d in frame.dtypes.items()
    ]
    naive = to_onnx(
        forest, initial_types=types, target_opset=TARGET_OPSET, options={"zipmap": False}
    )
    return [
        ("an exact export", forest, good, frame),
        ("a float32 export whose splits flip", forest, naive.SerializeToString(), frame),
    ]


@register(
    "03.parity_report",
    forbidden=(
        "course_pkg.onnx_export.parity.check_parity",
        "course_pkg.onnx_export.parity.compare_outputs",
    ),
)
def _parity_report(answer: Any) -> str:
    from course_pkg.onnx_export import check_parity

    fn = callable_answer(answer, "parity_report")
    for label, pipeline, model, frame in parity_cases():
        got = fn(pipeline, model, frame)
        expect(isinstance(got, dict), "return a dict with label_agreement and max_abs_diff")
        report = check_parity(pipeline, model, frame)  # the oracle: the course's parity code
        want = {
            "label_agreement": report.label_agreement,
            "max_abs_diff": report.max_abs_proba_diff,
        }
        for key, value in want.items():
            expect(key in got, f"the dict needs the key {key!r}")
            # atol 1e-6: onnxruntime's own float32 noise (~1e-7) depends on session options
            if not np.isclose(float(got[key]), value, rtol=1e-3, atol=1e-6):
                raise CheckFailed(
                    f"{label}: {key} = {got[key]!r}, expected {value:.6g} — compare every row "
                    "and class of predict_proba with the ONNX probabilities (absolute difference)"
                )
    return "matches on an exact export and catches a broken one"


def clip_pipeline() -> tuple[Any, Any]:
    """ClipOutliers → StandardScaler → LogisticRegression on the numbers; (pipeline, frame).

    The clip sits in a ColumnTransformer, which gathers the per-column inputs into the one
    matrix a converter receives (a bare first step would get five separate inputs)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from course_pkg.datasets import NUMERIC
    from course_pkg.onnx_export.custom import ClipOutliers

    x_train, x_test, y_train, _ = exercise_data()
    columns = list(NUMERIC)
    pipeline = make_pipeline(
        ColumnTransformer([("clip", ClipOutliers(0.05, 0.95), columns)]),
        StandardScaler(),
        LogisticRegression(max_iter=500),
    ).fit(x_train[columns], y_train)
    frame = x_test[columns].copy()
    frame.iloc[:5, 1] = 10_000  # far outliers: clipping must happen in the graph too
    return pipeline, frame


@register("03.convert_clip")
def _convert_clip(answer: Any) -> str:
    import inspect

    from course_pkg.onnx_export import export_sklearn
    from course_pkg.onnx_export.custom import register_clip_converter

    fn = callable_answer(answer, "convert_clip")
    expect(
        len(inspect.signature(fn).parameters) == 3,
        "a converter takes exactly (scope, operator, container)",
    )
    pipeline, frame = clip_pipeline()
    # The student's converter stays registered: the notebook's next step exports with it.
    register_clip_converter(fn)
    export_sklearn(pipeline, frame)  # raises ParityError when the clip is wrong
    return "ClipOutliers converts, and the graph clips like the transformer does"


@register("03.max_opset", forbidden=("course_pkg.onnx_export.inspect.runtime_max_opset",))
def _max_opset(answer: Any) -> str:
    from course_pkg.onnx_export import runtime_max_opset

    fn = callable_answer(answer, "max_opset")
    got = fn()
    expect(isinstance(got, int), f"return an int, got {type(got).__name__}")
    want = runtime_max_opset()
    expect(got <= want, f"onnxruntime cannot load opset {got}: try loading, don't guess")
    expect(got == want, f"{got} loads, but a newer opset does too: start from the top")
    return f"this onnxruntime loads up to opset {want}"
