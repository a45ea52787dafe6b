"""``OnnxPredictor``: an onnxruntime session that takes what a client sends.

It accepts a pandas DataFrame, a list of records (``[{"tenure_months": 3, ...}]``) or one
record, checks it against the model's inputs (and the manifest schema, when it has one), and
returns labels and probabilities. The server and the batch scorer both use it, so a row is
validated and fed the same way everywhere.

Session options, and why:
- ``intra_op_threads=1`` by default: a request is a few rows, and one thread per session
  avoids the thread-pool wake-up cost that dominates small batches; scale with processes
  (server workers) instead. The batch scorer passes more threads for 64k-row chunks.
- ``graph_optimization_level=ORT_ENABLE_ALL``: constant folding and node fusion are safe for
  these graphs and are applied once at load.
- ``inter_op_threads=1`` and sequential execution: the graphs here have no parallel branches
  worth a second pool.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from course_pkg.errors import CourseError, ErrorDetail

_OPTIMIZATION = {"disable": 0, "basic": 1, "extended": 2, "all": 99}


def describe_problems(problems: list[ErrorDetail], limit: int) -> str:
    """``field (row N): message; …`` for the first ``limit`` problems (errors and messages)."""
    return "; ".join(
        f"{p.get('field')}"
        + (f" (row {p['row']})" if p.get("row") is not None else "")
        + f": {p.get('message')}"
        for p in problems[:limit]
    )


class InputError(CourseError, ValueError):
    """The input does not fit the model; ``problems`` lists every issue found (field, message)."""

    def __init__(self, problems: list[ErrorDetail]) -> None:
        self.problems = problems
        shown = describe_problems(problems, 10)
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"invalid input: {shown}{more}")


_NUMERIC_FEEDS = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
}


def onnx_feeds(frame: pd.DataFrame, input_types: dict[str, str]) -> dict[str, np.ndarray]:
    """DataFrame → {input name: (n, 1) array} with the dtype each ONNX input declares."""
    feeds: dict[str, np.ndarray] = {}
    for name, onnx_type in input_types.items():
        series = frame[name]
        if onnx_type == "tensor(string)":
            if isinstance(series.dtype, pd.StringDtype):  # already text: skip a str() per value
                column = series.to_numpy(dtype=object)
            else:
                column = series.to_numpy().astype(str).astype(object)
        elif onnx_type in _NUMERIC_FEEDS:
            column = series.to_numpy(dtype=_NUMERIC_FEEDS[onnx_type])
        else:
            raise TypeError(f"input {name!r} has unsupported ONNX type {onnx_type}")
        feeds[name] = column.reshape(-1, 1)
    return feeds


def to_frame(data: pd.DataFrame | Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> pd.DataFrame:
    """A DataFrame from a DataFrame, a list of records or a single record."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        return pd.DataFrame([dict(data)])
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        if not all(isinstance(row, Mapping) for row in data):
            raise InputError(
                [{"field": "(body)", "row": None, "message": "expected a list of records"}]
            )
        return pd.DataFrame([dict(row) for row in data])
    raise InputError(
        [
            {
                "field": "(body)",
                "row": None,
                "message": f"expected records or a DataFrame, got {type(data).__name__}",
            }
        ]
    )


class OnnxPredictor:
    """predict / predict_proba over an onnxruntime session."""

    def __init__(
        self,
        source: str | Path | bytes,
        *,
        intra_op_threads: int = 1,
        inter_op_threads: int = 1,
        optimization: str = "all",
        schema: list[dict[str, Any]] | None = None,
        unknown_categories: str = "error",
    ) -> None:
        import onnxruntime as ort

        ort.disable_telemetry_events()  # see course_pkg/__init__.py: no traffic leaves the host
        if optimization not in _OPTIMIZATION:
            raise ValueError(f"optimization {optimization!r}: choose {', '.join(_OPTIMIZATION)}")
        if unknown_categories not in {"error", "ignore"}:
            raise ValueError("unknown_categories must be 'error' or 'ignore'")
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = inter_op_threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel(_OPTIMIZATION[optimization])
        options.log_severity_level = 3  # errors only: warnings about unused initialisers are noise
        model = source if isinstance(source, bytes) else str(source)
        self.source = "<bytes>" if isinstance(source, bytes) else str(source)
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        inputs = self.session.get_inputs()
        self.input_types = {i.name: i.type for i in inputs}
        # One 2-D input of fixed width > 1 (an image's pixels, an embedding): a "tensor" model
        # fed one matrix, instead of one (n, 1) column per input.
        self.tensor_input: tuple[str, int] | None = None
        if len(inputs) == 1 and len(inputs[0].shape) == 2:
            width = inputs[0].shape[1]
            if isinstance(width, int) and width > 1:
                self.tensor_input = (inputs[0].name, width)
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.schema = schema or []
        self.unknown_categories = unknown_categories
        self.manifest: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"OnnxPredictor({self.source!r}, inputs={list(self.input_types)})"

    @classmethod
    def from_package(
        cls, package: str | Path, public_key: Any = None, **options: Any
    ) -> OnnxPredictor:
        """Verify a package and open its ONNX file: ``artifacts.load_onnx_package``.

        Kept here because the notebooks and docs call it by this name; the work (and the
        import of artifacts, the layer above) happens in ``course_pkg.artifacts.loading``.
        """
        from course_pkg.artifacts.loading import load_onnx_package

        return load_onnx_package(package, public_key, **options)

    # ------------------------------------------------------------------ validation
    def problems(self, frame: pd.DataFrame) -> list[ErrorDetail]:
        """Every reason ``frame`` cannot be scored (empty list: it can)."""
        found: list[ErrorDetail] = []
        if len(frame) == 0:
            return [{"field": "(body)", "row": None, "message": "no rows: send at least one"}]
        if self.tensor_input is not None:
            name, width = self.tensor_input
            if frame.shape[1] != width:
                return [
                    {
                        "field": name,
                        "row": None,
                        "message": f"expected {width} columns, got {frame.shape[1]}",
                    }
                ]
            return [
                p for column in frame.columns for p in _number_problems(str(column), frame[column])
            ]
        categories = {c["name"]: c.get("categories") for c in self.schema}
        for name, onnx_type in self.input_types.items():
            if name not in frame.columns:
                found.append({"field": name, "row": None, "message": "missing column"})
                continue
            column = frame[name]
            if onnx_type == "tensor(string)":
                allowed = categories.get(name) if self.unknown_categories == "error" else None
                found.extend(_string_problems(name, column, allowed))
            else:
                found.extend(_number_problems(name, column))
        return found

    def validate(self, data: Any) -> pd.DataFrame:
        frame = to_frame(data)
        problems = self.problems(frame)
        if problems:
            raise InputError(problems)
        return frame

    # ------------------------------------------------------------------ prediction
    def run_feeds(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(labels, probabilities) for ready-made feeds (the hot path; no checks)."""
        outputs = self.session.run(None, feeds)
        return np.asarray(outputs[0]).reshape(-1), np.asarray(outputs[1])

    def predict_both(self, data: Any, *, validate: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(labels, probabilities) from one run of the graph."""
        frame = self.validate(data) if validate else to_frame(data)
        if self.tensor_input is not None:
            return self.predict_tensor(frame.to_numpy(), validate=False)
        return self.run_feeds(onnx_feeds(frame, self.input_types))

    def predict_columns(
        self, columns: Mapping[str, Sequence[Any]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(labels, probabilities) from {input: values} already validated (no pandas: fast)."""
        feeds: dict[str, np.ndarray] = {}
        for name, onnx_type in self.input_types.items():
            values = columns[name]
            if onnx_type == "tensor(string)":
                feeds[name] = np.array(values, dtype=object).reshape(-1, 1)
            else:
                feeds[name] = np.asarray(values, dtype=_NUMERIC_FEEDS[onnx_type]).reshape(-1, 1)
        return self.run_feeds(feeds)

    def predict_tensor(
        self, matrix: np.ndarray, *, validate: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """(labels, probabilities) for a tensor model from an (n, width) matrix."""
        if self.tensor_input is None:
            raise TypeError(f"{self!r} takes one column per input, not a matrix")
        name, width = self.tensor_input
        values = np.asarray(matrix, dtype=np.float64)
        if validate:
            problems: list[ErrorDetail] = []
            if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] != width:
                problems.append(
                    {
                        "field": name,
                        "row": None,
                        "message": f"expected shape (n, {width}), got {values.shape}",
                    }
                )
            else:
                bad = np.asarray(~np.isfinite(values).all(axis=1))
                problems += [
                    {"field": name, "row": row, "message": "NaN/inf is not allowed (finite only)"}
                    for row in _rows(bad)
                ]
            if problems:
                raise InputError(problems)
        feed_type = _NUMERIC_FEEDS.get(self.input_types[name], np.float32)
        return self.run_feeds({name: values.astype(feed_type)})

    def predict(self, data: Any, *, validate: bool = True) -> np.ndarray:
        return self.predict_both(data, validate=validate)[0]

    def predict_proba(self, data: Any, *, validate: bool = True) -> np.ndarray:
        return self.predict_both(data, validate=validate)[1]

    def example_row(self) -> dict[str, Any]:
        """A valid row from the schema (first category, 0 for numbers): for warm-up calls."""
        if self.tensor_input is not None:
            return {self.tensor_input[0]: [0.0] * self.tensor_input[1]}
        categories = {c["name"]: c.get("categories") for c in self.schema}
        row: dict[str, Any] = {}
        for name, onnx_type in self.input_types.items():
            if onnx_type == "tensor(string)":
                row[name] = (categories.get(name) or [""])[0]
            else:
                row[name] = 0
        return row


MAX_PROBLEMS = 100  # per column: enough to fix a file, bounded for a 10M-row batch


def _rows(mask: np.ndarray) -> list[int]:
    return [int(i) for i in np.flatnonzero(mask)[:MAX_PROBLEMS]]


def _number_problems(name: str, column: pd.Series) -> list[ErrorDetail]:
    """Numbers must be real, finite numbers (vectorised for numeric columns)."""
    if pd.api.types.is_bool_dtype(column.dtype):
        return [{"field": name, "row": None, "message": "booleans are not numbers"}]
    if pd.api.types.is_numeric_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return [
            {"field": name, "row": row, "message": f"{values[row]} is not allowed (finite only)"}
            for row in _rows(~np.isfinite(values))
        ]
    found: list[ErrorDetail] = []
    for row, value in enumerate(column.tolist()):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            found.append({"field": name, "row": row, "message": f"{value!r} is not a number"})
        elif not math.isfinite(float(value)):
            found.append(
                {"field": name, "row": row, "message": f"{value} is not allowed (finite only)"}
            )
        if len(found) >= MAX_PROBLEMS:
            break
    return found


def _string_problems(name: str, column: pd.Series, allowed: list[str] | None) -> list[ErrorDetail]:
    """Strings must be strings, and one of ``allowed`` when the schema lists categories."""
    if isinstance(column.dtype, pd.StringDtype):  # pandas' own string dtype: only NA to find
        is_text = column.notna().to_numpy(dtype=bool)
    else:
        is_text = column.map(lambda value: isinstance(value, str)).to_numpy(dtype=bool)
    found: list[ErrorDetail] = [
        {"field": name, "row": row, "message": _not_text(column.iloc[row])}
        for row in _rows(~is_text)
    ]
    if allowed:
        unknown = is_text & ~column.isin(allowed).to_numpy(dtype=bool)
        found += [
            {
                "field": name,
                "row": row,
                "message": f"unknown category {column.iloc[row]!r}; allowed: {', '.join(allowed)}",
            }
            for row in _rows(unknown)
        ]
    return found


def _not_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "missing value (null): send a string"
    return f"{value!r} is not a string"
