"""course-pkg train / keygen / sign / verify / scan, as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "course_pkg", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow  # the CLI end to end, several processes
def test_train_keygen_sign_verify_scan_round_trip(tmp_path: Path) -> None:
    trained = cli("train", "churn", "--out", "pkg", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "packaged churn 1.0.0" in trained.stdout and "model.onnx" in trained.stdout

    again = cli("train", "churn", "--out", "pkg", cwd=tmp_path)
    assert again.returncode == 2 and "overwrite" in again.stderr

    assert cli("keygen", "--out", "keys", cwd=tmp_path).returncode == 0
    signed = cli("sign", "pkg", "--key", "keys/signing_key.pem", cwd=tmp_path)
    assert signed.returncode == 0, signed.stderr
    ok = cli("verify", "pkg", "--key", "keys/signing_key.pub", cwd=tmp_path)
    assert ok.returncode == 0 and ok.stdout.startswith("OK churn 1.0.0: signature valid")

    scanned = cli("scan", "pkg/model.skops", cwd=tmp_path)
    assert scanned.returncode == 0 and scanned.stdout.startswith("SAFE")

    (tmp_path / "pkg" / "model.onnx").write_bytes(b"tampered")
    failed = cli("verify", "pkg", "--key", "keys/signing_key.pub", cwd=tmp_path)
    assert failed.returncode == 1 and "model.onnx" in failed.stderr
    refused = cli("sign", "pkg", "--key", "keys/signing_key.pem", cwd=tmp_path)
    assert refused.returncode == 1 and "does not match its manifest" in refused.stderr


def test_train_rejects_unknown_model_and_format(tmp_path: Path) -> None:
    unknown = cli("train", "titanic", "--out", "x", cwd=tmp_path)
    assert unknown.returncode == 2 and "churn" in unknown.stderr
    bad_format = cli("train", "churn", "--out", "x", "--formats", "onnx,h5", cwd=tmp_path)
    assert bad_format.returncode == 2 and "h5" in bad_format.stderr
    assert not (tmp_path / "x").exists()


def test_scan_reports_unreadable_and_unknown_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    result = cli("scan", "notes.txt", "missing.pkl", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("UNKNOWN notes.txt") and "unrecognised first bytes" in lines[0]
    assert lines[1].startswith("ERROR   missing.pkl")


def test_sign_upgrade_rewrites_a_legacy_signature(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from course_pkg.artifacts.legacy_signing import write_legacy_signature
    from course_pkg.artifacts.manifest import package_model

    (tmp_path / "m.bin").write_bytes(b"weights")
    package = package_model(
        {"m.bin": tmp_path / "m.bin"},
        tmp_path / "pkg",
        name="m",
        version="1.0.0",
        model_file="m.bin",
    ).path
    old = Ed25519PrivateKey.generate()
    write_legacy_signature(package, old)
    (tmp_path / "old.pub").write_bytes(
        old.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    legacy = cli("verify", "pkg", "--key", "old.pub", cwd=tmp_path)
    assert legacy.returncode == 0 and "LegacySignatureWarning" in legacy.stderr
    assert "sign --upgrade" in legacy.stderr

    assert cli("keygen", "--out", "keys", cwd=tmp_path).returncode == 0
    plain = cli("sign", "pkg", "--key", "keys/signing_key.pem", cwd=tmp_path)
    assert plain.returncode == 1 and "--upgrade" in plain.stderr
    no_old_key = cli("sign", "--upgrade", "pkg", "--key", "keys/signing_key.pem", cwd=tmp_path)
    assert no_old_key.returncode == 2 and "--legacy-key" in no_old_key.stderr
    upgraded = cli(
        "sign",
        "--upgrade",
        "pkg",
        "--key",
        "keys/signing_key.pem",
        "--legacy-key",
        "old.pub",
        cwd=tmp_path,
    )
    assert upgraded.returncode == 0 and "replaced manifest.sig" in upgraded.stdout, upgraded.stderr
    assert sorted(p.name for p in package.iterdir()) == ["m.bin", "manifest.json", "model.sig"]
    ok = cli("verify", "pkg", "--key", "keys/signing_key.pub", cwd=tmp_path)
    assert ok.returncode == 0 and not ok.stderr, ok.stderr
    old_key = cli("verify", "pkg", "--key", "old.pub", cwd=tmp_path)
    assert old_key.returncode == 1 and "Ed25519 key of the deprecated format" in old_key.stderr
