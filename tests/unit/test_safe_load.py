"""No false refusals: real fitted models in every pickle-family format load and agree."""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

from course_pkg.artifacts import (
    Allowlist,
    UnsafeArtifactError,
    UnsupportedFormatError,
    safe_load,
    scan_bytes,
)
from course_pkg.datasets import load_churn, split_churn
from course_pkg.training import build_churn_pipeline


def _estimators() -> dict[str, Any]:
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    return {
        "logistic-regression": LogisticRegression(max_iter=500),
        "random-forest": RandomForestClassifier(n_estimators=10, random_state=0),
        "gradient-boosting": GradientBoostingClassifier(n_estimators=10, random_state=0),
        "hist-gradient-boosting": HistGradientBoostingClassifier(max_iter=10, random_state=0),
        "svc": SVC(random_state=0),
        "decision-tree": DecisionTreeClassifier(random_state=0),
    }


@pytest.fixture(scope="module")
def data() -> tuple[Any, Any, Any]:
    x_train, x_test, y_train, _ = split_churn(load_churn())
    return x_train.head(800), y_train.head(800), x_test.head(200)


def _save(model: Any, path: Path, how: str) -> None:
    if how.startswith("pickle"):
        path.write_bytes(pickle.dumps(model, protocol=int(how[-1])))
    elif how == "joblib":
        joblib.dump(model, path, compress=0)
    else:
        joblib.dump(model, path, compress=(how.split("-")[1], 3))


FORMATS = [
    "pickle-p2",
    "pickle-p4",
    "pickle-p5",
    "joblib",
    "joblib-zlib",
    "joblib-gzip",
    "joblib-bz2",
    "joblib-xz",
    "joblib-lzma",
]


@pytest.mark.parametrize("estimator", list(_estimators()))
def test_fitted_pipelines_load_and_predict_identically(
    estimator: str, data: tuple[Any, Any, Any], tmp_path: Path
) -> None:
    from sklearn.pipeline import Pipeline

    x_train, y_train, x_test = data
    pipeline = build_churn_pipeline()
    pipeline = Pipeline([("preprocess", pipeline[0]), ("model", _estimators()[estimator])])
    pipeline.fit(x_train, y_train)
    expected = pipeline.predict(x_test)
    for how in FORMATS:
        path = tmp_path / f"{estimator}-{how}.bin"
        _save(pipeline, path, how)
        loaded = safe_load(path)
        np.testing.assert_array_equal(loaded.predict(x_test), expected, err_msg=how)
        if hasattr(pipeline, "predict_proba"):
            np.testing.assert_array_equal(
                loaded.predict_proba(x_test), pipeline.predict_proba(x_test)
            )


def test_plain_data_and_numpy_arrays_load(tmp_path: Path) -> None:
    obj = {
        "a": [1, 2.5, "x", None, True],
        "b": (1, 2),
        "c": {3, 4},
        "arr": np.arange(6).reshape(2, 3),
    }
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps(obj))
    loaded = safe_load(path)
    assert loaded["a"] == obj["a"] and loaded["c"] == obj["c"]
    np.testing.assert_array_equal(loaded["arr"], obj["arr"])


def test_joblib_with_string_and_object_arrays_loads(tmp_path: Path) -> None:
    obj = {"s": np.array(["a", "bc"]), "o": np.array(["x", 1], dtype=object), "f": np.ones((3, 2))}
    path = tmp_path / "mixed.joblib"
    joblib.dump(obj, path)
    loaded = safe_load(path)
    assert loaded["s"].tolist() == ["a", "bc"] and loaded["o"].tolist() == ["x", 1]


def test_torch_state_dict_and_torchscript_load(tmp_path: Path) -> None:
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    state_path = tmp_path / "state.pt"
    torch.save(net.state_dict(), state_path)
    state = safe_load(state_path)
    assert set(state) == set(net.state_dict())
    script_path = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(net), script_path)
    scripted = safe_load(script_path)
    x = torch.randn(5, 4)
    torch.testing.assert_close(scripted(x), net(x))


def test_skops_file_loads_and_a_hostile_skops_type_is_refused(tmp_path: Path) -> None:
    import os

    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    pipeline = build_churn_pipeline()
    x_train, x_test, y_train, _ = split_churn(load_churn())
    pipeline.fit(x_train.head(500), y_train.head(500))
    good = tmp_path / "model.skops"
    skops.io.dump(pipeline, good)
    np.testing.assert_array_equal(safe_load(good).predict(x_test), pipeline.predict(x_test))

    bad = tmp_path / "bad.skops"
    skops.io.dump(FunctionTransformer(func=os.system), bad)
    with pytest.raises(UnsafeArtifactError, match=r"posix\.system"):
        safe_load(bad)


def test_extending_the_allowlist_with_an_exact_global() -> None:
    data = pickle.dumps(np.datetime64("2026-01-01"))
    scan_bytes(data)  # numpy scalars are allowed by rule
    custom = pickle.dumps(Path("/tmp"))
    with pytest.raises(UnsafeArtifactError, match=r"pathlib\.PosixPath"):
        scan_bytes(custom)
    report = scan_bytes(custom, allowlist=Allowlist().with_globals(["pathlib.PosixPath"]))
    assert "pathlib.PosixPath" in report.unique_globals
    with pytest.raises(ValueError, match=r"exact 'module\.Name'"):
        Allowlist().with_globals(["os"])


def test_rules_allow_classes_only_never_functions_or_other_packages() -> None:
    for function_ref in (
        b"csklearn.utils.validation\ncheck_array\n.",
        b"csklearn.base\nclone\n.",
        b"cnumpy\nload\n.",
        b"cscipy.sparse\nload_npz\n.",
    ):
        with pytest.raises(UnsafeArtifactError, match="not on the allowlist"):
            scan_bytes(function_ref)
    with pytest.raises(UnsafeArtifactError, match=r"course_pkg\.artifacts\.allowlist\.Allowlist"):
        scan_bytes(pickle.dumps(Allowlist))
    # a dotted name (attribute walk) is never resolved, even under an allowed prefix
    with pytest.raises(UnsafeArtifactError):
        scan_bytes(b"\x80\x04\x8c\x07sklearn\x8c\x1cbase.BaseEstimator.__reduce__\x93.")


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (b"customer_id,tenure\nC1,3\n", UnsupportedFormatError, "unrecognised first bytes"),
        (pickle.dumps({"a": 1})[:-3], UnsafeArtifactError, "not a valid pickle"),
        (pickle.dumps(1) + b"garbage", UnsafeArtifactError, "not a valid pickle"),
        (b"PK\x03\x04broken", UnsupportedFormatError, "damaged zip"),
        (b"", UnsupportedFormatError, "unrecognised"),
    ],
)
def test_bad_files_get_a_clear_error(
    content: bytes, error: type[Exception], message: str, tmp_path: Path
) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(content)
    with pytest.raises(error, match=message):
        safe_load(path)


def test_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.pkl"
    path.write_bytes(pickle.dumps(b"x" * 10_000))
    with pytest.raises(UnsupportedFormatError, match="over the"):
        safe_load(path, max_bytes=1_000)


def test_scan_sees_the_same_bytes_it_loads(tmp_path: Path) -> None:
    """The file is read once: what was scanned is what gets deserialised."""
    path = tmp_path / "a.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    assert safe_load(path) == [1, 2, 3]
    assert scan_bytes(io.BytesIO(path.read_bytes()).getvalue()).pickles == 1
