"""OpenSSF model signing: what model.sig holds, every refusal, interop with the library's own
CLI in both directions, offline verification, the legacy manifest.sig, and every loader."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from course_pkg.artifacts import (
    IntegrityError,
    LegacySignatureWarning,
    SignatureError,
    SignerMismatchError,
    TamperedPackageError,
    UnsignedPackageError,
    generate_keypair,
    load_package,
    load_public_key,
    read_statement,
    sign_package,
    upgrade_signature,
    verify_package,
)
from course_pkg.artifacts.legacy_signing import REMOVED_IN, write_legacy_signature
from course_pkg.training import package_churn


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package_churn(tmp_path_factory.mktemp("pkg") / "churn", formats=("onnx", "skops")).path


@pytest.fixture
def package(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "churn"
    shutil.copytree(built, copy)
    return copy


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return generate_keypair(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def signed(package: Path, keys: tuple[Path, Path]) -> Path:
    sign_package(package, keys[0])
    return package


def model_signing_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The library's own command line, as a user of another tool runs it."""
    return subprocess.run(
        [sys.executable, "-m", "model_signing", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def flip_byte(path: Path, at: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF  # same size, different content
    path.write_bytes(bytes(data))


# --- what is signed ---------------------------------------------------------------------


def test_bundle_is_a_sigstore_bundle_listing_every_file(signed: Path) -> None:
    bundle = json.loads((signed / "model.sig").read_text())
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["verificationMaterial"]["tlogEntries"] == []  # key-based: no transparency log
    assert bundle["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"
    statement = read_statement(signed)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://model_signing/signature/v1.0"
    digests = {r["name"]: r["digest"] for r in statement["predicate"]["resources"]}
    assert set(digests) == {"manifest.json", "model.onnx", "model.skops"}
    for name, digest in digests.items():
        assert digest == hashlib.sha256((signed / name).read_bytes()).hexdigest()
    assert statement["predicate"]["serialization"]["ignore_paths"] == ["model.sig"]


def test_signed_package_verifies_and_loads(signed: Path, keys: tuple[Path, Path]) -> None:
    assert verify_package(signed, keys[1])["name"] == "churn"
    model, _ = load_package(signed, keys[1], require_signature=True)
    assert model is not None


def test_keys_are_p256_private_and_never_overwritten(tmp_path: Path) -> None:
    private, public = generate_keypair(tmp_path)
    assert private.stat().st_mode & 0o777 == 0o600
    key = serialization.load_pem_public_key(public.read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    with pytest.raises(FileExistsError):
        generate_keypair(tmp_path)


# --- refusals ------------------------------------------------------------------------------


def test_modified_model_file_is_named_and_nothing_loads(
    signed: Path, keys: tuple[Path, Path]
) -> None:
    flip_byte(signed / "model.onnx")
    with pytest.raises(TamperedPackageError) as info:
        verify_package(signed, keys[1])
    assert info.value.files == ["model.onnx"]
    assert "model.onnx: modified after signing" in str(info.value)
    with pytest.raises(TamperedPackageError):
        load_package(signed, keys[1])


def test_manifest_edited_after_signing_is_named(signed: Path, keys: tuple[Path, Path]) -> None:
    manifest = json.loads((signed / "manifest.json").read_text())
    manifest["metrics"]["roc_auc"] = 0.99  # an attacker improves the numbers
    (signed / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(TamperedPackageError) as info:
        verify_package(signed, keys[1])
    assert info.value.files == ["manifest.json"]


def test_missing_and_extra_files_are_all_named(signed: Path, keys: tuple[Path, Path]) -> None:
    (signed / "model.skops").unlink()
    (signed / "backdoor.py").write_text("import os")
    (signed / ".gitignore").write_text("*")  # the library ignores git files unless told not to
    with pytest.raises(TamperedPackageError) as info:
        verify_package(signed, keys[1])
    assert sorted(info.value.files) == [".gitignore", "backdoor.py", "model.skops"]
    assert "model.skops: signed but missing" in info.value.problems


def test_unsigned_package_is_refused(package: Path, keys: tuple[Path, Path]) -> None:
    with pytest.raises(UnsignedPackageError, match=r"model\.sig is missing"):
        verify_package(package, keys[1])


def test_another_signer_names_the_expected_key(
    signed: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    _, other_public = generate_keypair(tmp_path / "other")
    with pytest.raises(SignerMismatchError) as info:
        verify_package(signed, other_public)
    assert info.value.signed_by == load_public_key(keys[1]).fingerprint
    assert info.value.expected == load_public_key(other_public).fingerprint
    assert str(other_public) in str(info.value)


def test_forged_or_broken_bundles_are_refused(signed: Path, keys: tuple[Path, Path]) -> None:
    bundle = json.loads((signed / "model.sig").read_text())
    signature = bundle["dsseEnvelope"]["signatures"][0]
    signature["sig"] = signature["sig"][:-8] + ("A" * 7) + "="  # tampered signature bytes
    (signed / "model.sig").write_text(json.dumps(bundle))
    with pytest.raises(SignatureError, match="does not verify"):
        verify_package(signed, keys[1])
    (signed / "model.sig").write_text("{not json")
    with pytest.raises(SignatureError, match="unreadable"):
        verify_package(signed, keys[1])
    with pytest.raises(SignatureError, match="not a PEM public key"):
        verify_package(signed, b"not a key")


def test_symlinked_file_is_refused(signed: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("outside the package")
    (signed / "link.txt").symlink_to(outside)
    with pytest.raises(TamperedPackageError, match=r"link\.txt: is a symlink"):
        verify_package(signed, keys[1])


def test_ed25519_key_cannot_sign_in_the_standard_format(package: Path, tmp_path: Path) -> None:
    key = tmp_path / "ed25519.pem"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(SignatureError, match="elliptic-curve keys"):
        sign_package(package, key)
    assert not (package / "model.sig").exists()


# --- interop with the model_signing CLI, both ways -----------------------------------------


def test_signed_by_model_signing_cli_verifies_here(package: Path, keys: tuple[Path, Path]) -> None:
    private, public = keys
    made = model_signing_cli(
        "sign", "key", package, "--private_key", private, "--signature", package / "model.sig"
    )
    assert made.returncode == 0, made.stderr
    assert verify_package(package, public)["name"] == "churn"
    flip_byte(package / "model.skops")
    with pytest.raises(TamperedPackageError) as info:
        verify_package(package, public)
    assert info.value.files == ["model.skops"]


def test_signed_here_verifies_with_model_signing_cli(signed: Path, keys: tuple[Path, Path]) -> None:
    check = ("verify", "key", signed, "--signature", signed / "model.sig", "--public_key", keys[1])
    ok = model_signing_cli(*check)
    assert ok.returncode == 0 and "Verification succeeded" in ok.stdout, ok.stderr
    flip_byte(signed / "model.onnx")
    failed = model_signing_cli(*check)
    assert failed.returncode == 1 and "model.onnx" in failed.stderr


@pytest.mark.skipif(
    shutil.which("unshare") is None or os.geteuid() != 0,
    reason="needs root and util-linux unshare to run verification in a network namespace",
)
def test_verification_needs_no_network(signed: Path, keys: tuple[Path, Path]) -> None:
    code = (
        "import sys; from course_pkg.artifacts import verify_package;"
        "print(verify_package(sys.argv[1], sys.argv[2])['name'])"
    )
    # a fresh network namespace has only a down loopback: any connection attempt fails
    run = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", code, str(signed), str(keys[1])],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0 and run.stdout.strip() == "churn", run.stderr


# --- the legacy manifest.sig -----------------------------------------------------------------


@pytest.fixture
def legacy(package: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A package signed the old way, and the Ed25519 public key that verifies it."""
    key = Ed25519PrivateKey.generate()
    write_legacy_signature(package, key)
    public = tmp_path / "old.pub"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return package, public


def test_legacy_signature_still_verifies_with_a_deprecation(legacy: tuple[Path, Path]) -> None:
    package, old_public = legacy
    with pytest.warns(LegacySignatureWarning, match=rf"course_pkg {REMOVED_IN} refuses it"):
        assert verify_package(package, old_public)["name"] == "churn"
    flip_byte(package / "model.onnx")
    with pytest.warns(LegacySignatureWarning), pytest.raises(IntegrityError, match=r"model\.onnx"):
        verify_package(package, old_public)


def test_upgrade_replaces_manifest_sig_by_model_sig(
    legacy: tuple[Path, Path], keys: tuple[Path, Path]
) -> None:
    package, old_public = legacy
    upgrade_signature(package, keys[0], old_public)
    assert not (package / "manifest.sig").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation any more
        verify_package(package, keys[1])
    check = (
        "verify",
        "key",
        package,
        "--signature",
        package / "model.sig",
        "--public_key",
        keys[1],
    )
    assert model_signing_cli(*check).returncode == 0


def test_upgrade_never_resigns_a_tampered_package(
    legacy: tuple[Path, Path], keys: tuple[Path, Path]
) -> None:
    package, old_public = legacy
    (package / "manifest.json").write_text((package / "manifest.json").read_text() + " ")
    with pytest.raises(SignatureError, match="manifest was modified"):
        upgrade_signature(package, keys[0], old_public)
    assert (package / "manifest.sig").exists() and not (package / "model.sig").exists()


def test_sign_refuses_a_legacy_package_without_upgrade(
    legacy: tuple[Path, Path], keys: tuple[Path, Path]
) -> None:
    with pytest.raises(SignatureError, match="--upgrade"):
        sign_package(legacy[0], keys[0])


# --- every loader verifies through the same function ---------------------------------------


def test_every_loader_refuses_a_tampered_signed_package(
    signed: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    from course_pkg.artifacts import export_package
    from course_pkg.batch import score_file
    from course_pkg.datasets import load_churn
    from course_pkg.onnx_export import OnnxPredictor
    from course_pkg.serving.jobs import work
    from course_pkg.serving.registry import ModelRegistry

    public = keys[1]
    rows = tmp_path / "rows.csv"
    load_churn().head(50).to_csv(rows, index=False)
    summary = score_file(signed, rows, tmp_path / "ok.parquet", progress=False, public_key=public)
    assert summary.scored == 50
    flip_byte(signed / "model.onnx")
    loaders = {
        "load_package": lambda: load_package(signed, public),
        "OnnxPredictor.from_package": lambda: OnnxPredictor.from_package(signed, public),
        "server registry": lambda: ModelRegistry([signed], public_key=public).load_all(),
        # the worker verifies before it ever connects to Redis (nothing listens on port 1)
        "job worker": lambda: work([signed], "redis://127.0.0.1:1/0", public_key=public),
        "batch scorer": lambda: score_file(
            signed, rows, tmp_path / "out.parquet", progress=False, public_key=public
        ),
        "ONNX export": lambda: export_package(signed, tmp_path / "onnx", public_key=public),
    }
    for name, load in loaders.items():
        with pytest.raises(TamperedPackageError, match=r"model\.onnx"):
            load()
        assert not (tmp_path / "out.parquet").exists() and not (tmp_path / "onnx").exists(), name
