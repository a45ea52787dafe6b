"""Packages: manifest contents, every tamper mode, and version drift warnings.

Signatures (model-signing, the legacy manifest.sig, every loader) are in test_model_signing.py.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest

from course_pkg.artifacts import (
    ArtifactError,
    ArtifactVersionWarning,
    IntegrityError,
    load_package,
    verify_package,
)
from course_pkg.artifacts.manifest import dumps, package_model
from course_pkg.training import package_churn


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package_churn(tmp_path_factory.mktemp("pkg") / "churn", formats=("onnx", "skops")).path


@pytest.fixture
def package(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "churn"
    shutil.copytree(built, copy)
    return copy


def test_manifest_records_what_reproduction_needs(package: Path) -> None:
    manifest = verify_package(package)
    assert manifest["name"] == "churn" and manifest["version"] == "1.0.0"
    assert manifest["model_file"] == "model.onnx"
    assert set(manifest["files"]) == {"model.onnx", "model.skops"}
    assert all(len(f["sha256"]) == 64 for f in manifest["files"].values())
    assert manifest["environment"]["libraries"]["scikit-learn"]
    assert manifest["training"]["data_file"] == "churn.csv"
    assert len(manifest["training"]["data_sha256"]) == 64
    assert manifest["training"]["seed"] == 20251125
    assert 0.7 < manifest["metrics"]["roc_auc"] < 0.9
    contract = next(c for c in manifest["input_schema"] if c["name"] == "contract")
    assert contract["categories"] == ["month-to-month", "one-year", "two-year"]
    assert manifest["output_schema"]["label"]["classes"] == [0, 1]


def test_loaded_package_predicts(package: Path) -> None:
    from course_pkg.datasets import load_churn

    model, pkg = load_package(package)
    frame = load_churn().head(20)
    assert model.predict_proba(frame).shape == (20, 2)
    skops_model, _ = load_package(package, file="model.skops")
    assert (skops_model.predict(frame) == model.predict(frame)).all()
    assert pkg.model_path.name == "model.onnx"


def _problems(package: Path) -> list[str]:
    with pytest.raises(IntegrityError) as info:
        verify_package(package)
    return info.value.problems


def test_modified_file_is_named(package: Path) -> None:
    data = bytearray((package / "model.onnx").read_bytes())
    data[100] ^= 0xFF  # same size, different content
    (package / "model.onnx").write_bytes(bytes(data))
    assert _problems(package) == [
        "model.onnx: sha256 differs from the manifest (file was modified)"
    ]


def test_missing_resized_and_extra_files_are_all_listed(package: Path) -> None:
    (package / "model.skops").unlink()
    listed = json.loads((package / "manifest.json").read_text())["files"]["model.onnx"]["bytes"]
    with (package / "model.onnx").open("ab") as handle:
        handle.write(b"\0")
    (package / "notes.txt").write_text("hi")
    problems = _problems(package)
    assert "model.skops: listed in the manifest but missing" in problems
    assert f"model.onnx: {listed + 1} bytes, manifest says {listed}" in problems
    assert "notes.txt: present but not in the manifest (unexpected file)" in problems


def test_broken_or_incomplete_manifest(package: Path) -> None:
    (package / "manifest.json").write_text("{not json")
    assert "not valid JSON" in _problems(package)[0]
    (package / "manifest.json").write_text(json.dumps({"name": "churn"}))
    assert "lacks" in _problems(package)[0]
    (package / "manifest.json").unlink()
    assert "missing" in _problems(package)[0]


def test_require_signature_needs_a_key(package: Path) -> None:
    with pytest.raises(ArtifactError, match="public_key"):
        verify_package(package, require_signature=True)


def test_package_refuses_bad_names_versions_and_overwrites(tmp_path: Path) -> None:
    model = tmp_path / "m.bin"
    model.write_bytes(b"x")
    common = {"model_file": "m.bin"}
    with pytest.raises(ArtifactError, match="semantic versioning"):
        package_model({"m.bin": model}, tmp_path / "p", name="m", version="v1", **common)
    with pytest.raises(ArtifactError, match="lower-case"):
        package_model({"m.bin": model}, tmp_path / "p", name="My Model", version="1.0.0", **common)
    package_model({"m.bin": model}, tmp_path / "p", name="m", version="1.0.0", **common)
    with pytest.raises(FileExistsError):
        package_model({"m.bin": model}, tmp_path / "p", name="m", version="1.0.1", **common)
    assert verify_package(tmp_path / "p")["version"] == "1.0.0"  # nothing was lost
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".p.")]  # no staging left


def test_library_drift_warns_with_a_fix(package: Path) -> None:
    manifest = json.loads((package / "manifest.json").read_text())
    manifest["environment"]["libraries"]["onnxruntime"] = "1.0.0"
    (package / "manifest.json").write_text(dumps(manifest))
    with pytest.warns(ArtifactVersionWarning, match=r"pip install onnxruntime==1\.0\.0"):
        load_package(package)


def test_sklearn_inconsistent_version_warning_is_made_actionable(tmp_path: Path) -> None:
    import pickle

    import sklearn
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    current = sklearn.__version__.encode()
    fake = b"0.0." + b"9" * (len(current) - 4)  # same length keeps the pickle valid
    blob = pickle.dumps(model).replace(current, fake)
    (tmp_path / "model.pkl").write_bytes(blob)
    pkg = package_model(
        {"model.pkl": tmp_path / "model.pkl"},
        tmp_path / "pkg",
        name="old",
        version="0.1.0",
        model_file="model.pkl",
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_package(pkg.path)
    messages = [str(w.message) for w in caught if w.category is ArtifactVersionWarning]
    assert any(f"pip install scikit-learn=={fake.decode()}" in m for m in messages), messages
