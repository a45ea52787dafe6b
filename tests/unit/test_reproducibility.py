"""Same seed + same data → same predictions and the same bytes, across processes.

Byte-reproducible formats: pickle, joblib, joblib-compressed and ONNX (after sorting opset
imports, see course_pkg.onnx_export). skops is not: it names its array members after Python
object ids and stamps zip entries with the current time — its *content* round-trips, its bytes
do not. docs/ARTIFACTS.md explains.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

DETERMINISTIC = "onnx,pickle,joblib,joblib-compressed"


def _train(out: Path, hash_seed: str) -> dict:  # type: ignore[type-arg]
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "SOURCE_DATE_EPOCH": "1764028800"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "course_pkg",
            "train",
            "churn",
            "--out",
            str(out),
            "--formats",
            DETERMINISTIC,
        ],
        check=True,
        capture_output=True,
        env=env,
        timeout=300,
    )
    return dict(json.loads((out / "manifest.json").read_text()))


@pytest.mark.slow
def test_two_trainings_give_identical_manifests_and_files(tmp_path: Path) -> None:
    first = _train(tmp_path / "a", "1")
    second = _train(tmp_path / "b", "2")  # a different string-hash order, on purpose
    assert first["files"] == second["files"]
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (
        tmp_path / "b" / "manifest.json"
    ).read_bytes()


def test_same_seed_same_predictions_in_every_format() -> None:
    from course_pkg.training import train_churn

    a, b = train_churn(seed=7), train_churn(seed=7)
    np.testing.assert_array_equal(
        a.pipeline.predict_proba(a.x_test), b.pipeline.predict_proba(b.x_test)
    )
    assert a.metrics == b.metrics


def test_a_different_seed_changes_the_split_and_the_metrics() -> None:
    from course_pkg.training import train_churn

    assert train_churn(seed=7).metrics != train_churn(seed=8).metrics
