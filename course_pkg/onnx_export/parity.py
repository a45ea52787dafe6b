"""Is the exported model the same model? Label agreement and max |Δp| on held-out rows.

The tolerance is absolute, on probabilities: 1e-5. onnxruntime's tree and linear kernels run
in float32, whose unit roundoff is 6e-8; a probability assembled from a few hundred float32
additions (100 trees × a leaf value each, or a dot product and a sigmoid) carries an error of
order 1e-7, which is what we measure (≤ 2e-7 on the churn models). 1e-5 leaves fifty-fold
headroom for other CPUs and thread counts while still catching a real difference: a flipped
split, a wrong category order or a missing scaler moves probabilities by 1e-3 to 1e-1. Labels
must agree on every row — a model that flips one decision is not the same model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from course_pkg.errors import CourseError

PROBA_ATOL = 1e-5


class ParityError(CourseError, AssertionError):
    """The exported model disagrees with the original beyond tolerance (see ``report``)."""

    def __init__(self, report: ParityReport) -> None:
        self.report = report
        super().__init__(report.explain())


@dataclass(frozen=True)
class ParityReport:
    rows: int
    label_agreement: float  # fraction of rows with the same predicted label
    max_abs_proba_diff: float  # over every row and class
    worst_row: int  # position (0-based) of the row with the largest difference
    proba_atol: float = PROBA_ATOL

    @property
    def ok(self) -> bool:
        return self.label_agreement == 1.0 and self.max_abs_proba_diff <= self.proba_atol

    def explain(self) -> str:
        verdict = "parity OK" if self.ok else "PARITY FAILED"
        text = (
            f"{verdict} on {self.rows} rows: labels agree on {self.label_agreement:.4%}, "
            f"max |Δp| = {self.max_abs_proba_diff:.3g} (tolerance {self.proba_atol:g}), "
            f"worst row {self.worst_row}"
        )
        if not self.ok:
            text += (
                ". The ONNX graph is not computing what the original computes. Usual causes: "
                "float32 preprocessing in front of trees (export the pipeline with "
                "course_pkg.onnx_export.export_sklearn, which keeps it in float64), a "
                "transformer converted with the wrong options, or inputs fed in a different "
                "column order or dtype than the export declared."
            )
        return text

    def raise_if_failed(self) -> ParityReport:
        if not self.ok:
            raise ParityError(self)
        return self

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def compare_outputs(
    labels: np.ndarray,
    proba: np.ndarray,
    ref_labels: np.ndarray,
    ref_proba: np.ndarray,
    proba_atol: float = PROBA_ATOL,
) -> ParityReport:
    """The report for two sets of (labels, probabilities) — the core of every parity check."""
    proba, ref_proba = np.asarray(proba, dtype=np.float64), np.asarray(ref_proba, np.float64)
    if proba.shape != ref_proba.shape:
        raise ValueError(f"probability shapes differ: {proba.shape} vs {ref_proba.shape}")
    per_row = np.abs(proba - ref_proba).reshape(len(proba), -1).max(axis=1)
    agree = np.asarray(labels).reshape(-1) == np.asarray(ref_labels).reshape(-1)
    return ParityReport(
        rows=len(per_row),
        label_agreement=float(agree.mean()),
        max_abs_proba_diff=float(per_row.max()),
        worst_row=int(per_row.argmax()),
        proba_atol=proba_atol,
    )


def _predictor(onnx_model: Any) -> Any:
    from course_pkg.onnx_export.predictor import OnnxPredictor

    if isinstance(onnx_model, OnnxPredictor):
        return onnx_model
    if isinstance(onnx_model, (str, Path, bytes)):
        return OnnxPredictor(onnx_model)
    return OnnxPredictor(onnx_model.SerializeToString())


def check_parity(
    pipeline: Any, onnx_model: Any, frame: pd.DataFrame, *, proba_atol: float = PROBA_ATOL
) -> ParityReport:
    """Compare ``pipeline`` (scikit-learn) with ``onnx_model`` on ``frame``.

    ``onnx_model`` may be a ModelProto, serialized bytes, a path or an ``OnnxPredictor``.
    Returns the report; call ``.raise_if_failed()`` to turn a failure into ``ParityError``.
    """
    if not hasattr(pipeline, "predict_proba"):
        raise TypeError(
            f"{type(pipeline).__name__} has no predict_proba: check_parity compares classifiers"
        )
    if len(frame) == 0:
        raise ValueError("check_parity needs at least one row")
    labels, proba = _predictor(onnx_model).predict_both(frame, validate=False)
    return compare_outputs(
        labels, proba, pipeline.predict(frame), pipeline.predict_proba(frame), proba_atol
    )


def check_torch_parity(
    module: Any,
    onnx_model: Any,
    inputs: np.ndarray,
    *,
    proba_atol: float = PROBA_ATOL,
) -> ParityReport:
    """Compare a torch classifier (outputs = probabilities or logits) with its ONNX export.

    Both outputs go through the same softmax when they are not probabilities already, and
    the label is the arg-max, so the report reads like the scikit-learn one.
    """
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(
        onnx_model if isinstance(onnx_model, (str, bytes)) else onnx_model.SerializeToString(),
        providers=["CPUExecutionProvider"],
    )
    x = np.asarray(inputs, dtype=np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    expected, got = _as_probabilities(expected), _as_probabilities(got)
    return compare_outputs(got.argmax(1), got, expected.argmax(1), expected, proba_atol)


def _as_probabilities(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    rows_sum_to_one = np.allclose(values.sum(axis=1), 1.0, atol=1e-4) and values.min() >= 0
    if rows_sum_to_one:
        return values
    shifted: np.ndarray = np.exp(values - values.max(axis=1, keepdims=True))
    probabilities: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
    return probabilities
