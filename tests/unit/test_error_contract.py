"""One error contract: every refusal is an ArtifactError; no torch/zipfile/pickle error escapes."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np
import pytest

from course_pkg.artifacts import ArtifactError, load_model, safe_load, scan_file


def _torch_bytes() -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, buffer)
    return buffer.getvalue()


def _truncated_torch() -> bytes:
    return _torch_bytes()[:300]


def _torch_with_tensor_bytes_damaged() -> bytes:
    """A valid zip whose data.pkl references a storage member that is missing."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(_torch_bytes())) as source, zipfile.ZipFile(out, "w") as z:
        for info in source.infolist():
            if "/data/" not in info.filename:
                z.writestr(info.filename, source.read(info))
    return out.getvalue()


def _joblib_zlib_damaged() -> bytes:
    buffer = io.BytesIO()
    joblib.dump({"a": np.arange(100.0)}, buffer, compress=3)
    data = bytearray(buffer.getvalue())
    data[40:60] = b"\x00" * 20
    return bytes(data)


def _npy_bad_header() -> bytes:
    return b"\x93NUMPY\x01\x00\x10\x00{'descr': <junk"


def _npz_damaged() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, a=np.arange(5))
    return buffer.getvalue()[:-30]


def _skops_garbage_schema() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("schema.json", "{not json")
    return out.getvalue()


def _torch_with_a_sklearn_object() -> bytes:
    """Allowlisted for us (a sklearn class); torch's weights_only unpickler refuses it unless
    told to trust exactly the globals our scan allowed."""
    import torch
    from sklearn.preprocessing import StandardScaler

    buffer = io.BytesIO()
    torch.save({"scaler": StandardScaler()}, buffer)
    return buffer.getvalue()


CASES: dict[str, Callable[[], bytes]] = {
    "truncated-torch-zip": _truncated_torch,
    "torch-zip-missing-tensor-data": _torch_with_tensor_bytes_damaged,
    "joblib-zlib-damaged": _joblib_zlib_damaged,
    "npy-bad-header": _npy_bad_header,
    "npz-truncated": _npz_damaged,
    "skops-garbage-schema": _skops_garbage_schema,
    "pickle-truncated": lambda: pickle.dumps(list(range(50)))[:-5],
    "pickle-bad-opcode-after-valid-start": lambda: b"(\xfe\xfe",
}


@pytest.mark.parametrize("case", list(CASES))
def test_damaged_files_raise_an_artifact_error_and_scan_reports_them(
    case: str, tmp_path: Path
) -> None:
    path = tmp_path / f"{case}.bin"
    path.write_bytes(CASES[case]())
    with pytest.raises(ArtifactError) as info:
        safe_load(path)
    assert str(path) in str(info.value)
    verdict = scan_file(path)  # never raises
    assert not verdict.safe or case == "torch-zip-missing-tensor-data", verdict


def test_a_torch_archive_with_allowlisted_non_torch_globals_loads(tmp_path: Path) -> None:
    path = tmp_path / "scaler.pt"
    path.write_bytes(_torch_with_a_sklearn_object())
    loaded = safe_load(path)
    assert type(loaded["scaler"]).__name__ == "StandardScaler"


def test_broken_onnx_is_an_artifact_error(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08garbage")
    with pytest.raises(ArtifactError, match="onnxruntime cannot load it"):
        load_model(path, "onnx")


def test_scan_cli_reports_damaged_files_without_a_traceback(tmp_path: Path) -> None:
    paths = []
    for case, build in CASES.items():
        paths.append(tmp_path / f"{case}.bin")
        paths[-1].write_bytes(build())
    result = subprocess.run(
        [sys.executable, "-m", "course_pkg", "scan", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stdout.splitlines()) == len(CASES)
