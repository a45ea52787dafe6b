"""Save and load one fitted scikit-learn model in every format the course compares.

| format | file | can loading run code? | readable outside Python? |
|---|---|---|---|
| pickle | model.pkl | yes (any global, REDUCE calls it) | no |
| joblib | model.joblib | yes (pickle underneath) | no |
| joblib-compressed | model.joblib.xz | yes (a compressed pickle) | no |
| skops | model.skops | no (only listed types, checked) | no (Python + skops) |
| onnx | model.onnx | no (a protobuf graph of ops) | yes (C/C++/C#/Java/JS runtimes) |

Loading here always goes through ``safe_load`` (or onnxruntime), never plain ``pickle.load``.
TorchScript and SavedModel (torch and TensorFlow models) are in ``course_pkg.artifacts.deep``.
"""

from __future__ import annotations

import functools
import pickle
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from course_pkg.artifacts.errors import MalformedArtifactError
from course_pkg.artifacts.safe_load import safe_load
from course_pkg.onnx_export import OnnxPredictor, export_sklearn

FORMATS: dict[str, str] = {
    "pickle": "model.pkl",
    "joblib": "model.joblib",
    "joblib-compressed": "model.joblib.xz",
    "skops": "model.skops",
    "onnx": "model.onnx",
}
EXECUTES_CODE_ON_LOAD = {
    "pickle": True,
    "joblib": True,
    "joblib-compressed": True,
    "skops": False,
    "onnx": False,
}
PORTABILITY = {
    "pickle": "Python + same library versions",
    "joblib": "Python + same library versions",
    "joblib-compressed": "Python + same library versions",
    "skops": "Python + skops + same sklearn",
    "onnx": "any ONNX runtime (C, C++, C#, Java, JS, Python)",
}


def save_model(model: Any, path: Path, fmt: str, sample: pd.DataFrame | None = None) -> Path:
    """Write ``model`` to ``path`` in ``fmt``; ONNX needs a ``sample`` frame for input types."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "pickle":
        with path.open("wb") as handle:
            pickle.dump(model, handle, protocol=5)
    elif fmt in {"joblib", "joblib-compressed"}:
        import joblib

        joblib.dump(model, path, compress=("xz", 3) if fmt == "joblib-compressed" else 0)
    elif fmt == "skops":
        import skops.io

        skops.io.dump(model, path)
    elif fmt == "onnx":
        if sample is None:
            raise ValueError("ONNX export needs sample= a DataFrame with the input columns")
        path.write_bytes(export_sklearn(model, sample).SerializeToString())
    else:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    return path


def load_model(path: Path, fmt: str) -> Any:
    """Load safely: pickle-family and skops through ``safe_load``, ONNX with onnxruntime."""
    if fmt == "onnx":
        try:
            return OnnxPredictor(path)
        except Exception as error:  # onnxruntime's own errors: one ArtifactError contract
            raise MalformedArtifactError(
                str(path), f"onnxruntime cannot load it ({type(error).__name__}: {error})"
            ) from error
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    return safe_load(path)


@dataclass(frozen=True)
class FormatReport:
    format: str
    file: str
    size_kb: float
    load_ms: float  # median of `repeats` loads
    max_abs_diff: float  # largest |p_loaded - p_original| over the sample
    labels_agree: float  # fraction of identical predicted labels
    executes_code_on_load: bool
    portability: str


def median_ms(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """(median wall time of ``repeats`` calls in ms, the last call's result)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def compare_formats(
    model: Any,
    sample: pd.DataFrame,
    directory: Path,
    formats: tuple[str, ...] = tuple(FORMATS),
    repeats: int = 5,
) -> list[FormatReport]:
    """Save ``model`` in each format, reload it ``repeats`` times, and compare predictions."""
    reference = model.predict_proba(sample)
    labels = model.predict(sample)
    reports = []
    for fmt in formats:
        path = save_model(model, directory / FORMATS[fmt], fmt, sample)
        load_ms, loaded = median_ms(functools.partial(load_model, path, fmt), repeats)
        proba = loaded.predict_proba(sample)
        reports.append(
            FormatReport(
                format=fmt,
                file=path.name,
                size_kb=round(path.stat().st_size / 1024, 1),
                load_ms=round(load_ms, 2),
                max_abs_diff=float(np.max(np.abs(proba - reference))),
                labels_agree=float(np.mean(loaded.predict(sample) == labels)),
                executes_code_on_load=EXECUTES_CODE_ON_LOAD[fmt],
                portability=PORTABILITY[fmt],
            )
        )
    return reports


def reports_frame(reports: list[FormatReport]) -> pd.DataFrame:
    return pd.DataFrame([r.__dict__ for r in reports]).set_index("format")
