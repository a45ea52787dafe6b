"""A custom transformer with no ONNX converter — notebook 03's "fix a failing conversion".

``ClipOutliers`` clips each numeric column to the 1st-99th percentile seen in training.
skl2onnx cannot know what arbitrary Python does, so converting a pipeline that contains it
fails with ``MissingShapeCalculator``. There are two fixes: refactor the pipeline so every
step has a converter, or tell skl2onnx how to write this step as ONNX ops — a *shape
calculator* (what comes out: same type and shape as what goes in) and a *converter* (here:
``Max(Min(X, upper), lower)``, with per-column bounds broadcast across rows). Notebook 03
has students write the converter; ``clip_shape_calculator`` is given.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class ClipOutliers(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Clip each column to its [lower_quantile, upper_quantile] range from ``fit``."""

    def __init__(self, lower_quantile: float = 0.01, upper_quantile: float = 0.99) -> None:
        self.lower_quantile = lower_quantile
        self.upper_quantile = upper_quantile

    def fit(self, x: Any, y: Any = None) -> ClipOutliers:
        values = np.asarray(x, dtype=np.float64)
        self.lower_ = np.quantile(values, self.lower_quantile, axis=0)
        self.upper_ = np.quantile(values, self.upper_quantile, axis=0)
        self.n_features_in_ = values.shape[1]
        return self

    def transform(self, x: Any) -> np.ndarray:
        return np.clip(np.asarray(x, dtype=np.float64), self.lower_, self.upper_)


def clip_shape_calculator(operator: Any) -> None:
    """Output = input's element type and shape (clipping changes values, not shape)."""
    from skl2onnx.common.utils import check_input_and_output_numbers

    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=1)
    source = operator.inputs[0].type
    operator.outputs[0].type = type(source)(list(source.shape))


def register_clip_converter(converter: Any) -> None:
    """Tell skl2onnx to convert ``ClipOutliers`` with ``converter`` (replaces any earlier one)."""
    from skl2onnx import update_registered_converter

    update_registered_converter(
        ClipOutliers, "CourseClipOutliers", clip_shape_calculator, converter, overwrite=True
    )
