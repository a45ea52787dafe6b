"""Export scikit-learn pipelines to ONNX and run them with onnxruntime.

This module holds the core the formats notebook already needs (export a whole pipeline with
one typed input per column; predict from a DataFrame). Parity reports, inspection helpers, the
torch path and the CLI build on it (notebook 03).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# skl2onnx 1.20 converts up to opset 22 and onnxruntime 1.32 runs it; 21 is the newest opset
# both have supported for a full release cycle. ai.onnx.ml 3 carries the tree/linear ops.
TARGET_OPSET: dict[str, int] = {"": 21, "ai.onnx.ml": 3}


def _initial_types(frame: pd.DataFrame) -> list[tuple[str, Any]]:
    """One ONNX input per column: strings stay strings, every number becomes float32."""
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    types: list[tuple[str, Any]] = []
    for column, dtype in frame.dtypes.items():
        if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            types.append((str(column), FloatTensorType([None, 1])))
        else:
            types.append((str(column), StringTensorType([None, 1])))
    return types


def export_sklearn(
    pipeline: Any,
    sample_frame: pd.DataFrame,
    *,
    target_opset: dict[str, int] | None = None,
    metadata: dict[str, str] | None = None,
) -> Any:
    """The whole pipeline as a checked ``onnx.ModelProto`` (probabilities as a plain tensor)."""
    import onnx
    from skl2onnx import to_onnx

    model = to_onnx(
        pipeline,
        initial_types=_initial_types(sample_frame),
        target_opset=target_opset or TARGET_OPSET,
        options={"zipmap": False},
    )
    # skl2onnx collects opset imports in a set, so their order follows string hashing and
    # changes between processes; sort them so the same pipeline gives the same bytes.
    imports = sorted(model.opset_import, key=lambda opset: opset.domain)
    del model.opset_import[:]
    model.opset_import.extend(imports)
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(model)
    return model


def onnx_feeds(frame: pd.DataFrame, input_types: dict[str, str]) -> dict[str, np.ndarray]:
    """DataFrame → {input name: (n, 1) array} with the dtype each ONNX input declares."""
    feeds: dict[str, np.ndarray] = {}
    for name, onnx_type in input_types.items():
        column = frame[name].to_numpy()
        if onnx_type == "tensor(string)":
            feeds[name] = column.astype(object).reshape(-1, 1)
        elif onnx_type == "tensor(float)":
            feeds[name] = column.astype(np.float32).reshape(-1, 1)
        elif onnx_type == "tensor(double)":
            feeds[name] = column.astype(np.float64).reshape(-1, 1)
        elif onnx_type == "tensor(int64)":
            feeds[name] = column.astype(np.int64).reshape(-1, 1)
        else:
            raise TypeError(f"input {name!r} has unsupported ONNX type {onnx_type}")
    return feeds


@dataclass
class OnnxPredictor:
    """predict / predict_proba over an onnxruntime session, from a DataFrame."""

    path: Path
    intra_op_threads: int = 1
    session: Any = field(init=False, repr=False)
    input_types: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )
        self.input_types = {i.name: i.type for i in self.session.get_inputs()}

    def _run(self, frame: pd.DataFrame) -> list[Any]:
        missing = sorted(set(self.input_types) - set(frame.columns))
        if missing:
            raise KeyError(f"missing columns {missing}; the model needs {list(self.input_types)}")
        return list(self.session.run(None, onnx_feeds(frame, self.input_types)))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self._run(frame)[0])

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self._run(frame)[1])
