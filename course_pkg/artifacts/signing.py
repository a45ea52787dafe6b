"""OpenSSF model signing for packages: ``model.sig``, verified before anything is loaded.

A package is signed in the ecosystem's standard format (the ``model-signing`` library of
sigstore/model-transparency): ``model.sig`` is a Sigstore bundle whose DSSE envelope carries an
in-toto statement listing the sha256 of **every** file of the package, ``manifest.json``
included. Tools outside this course (``model_signing verify key …``) check it, and packages
signed with ``model_signing sign key …`` verify here.

Keys are local and verification is offline: model-signing's key signer supports elliptic-curve
keys only, on NIST P-256, P-384 and P-521 (the curves Sigstore's protobuf specs name; Ed25519 is
refused by the library). We generate **P-256** (ECDSA with SHA-256): Sigstore's own default key
type, the smallest and fastest of the three, and one that cosign, openssl and PKCS#11 tokens
all handle. Keyless signing (an OIDC identity + the Rekor transparency log) needs the network;
notebook 02 shows its commands.

The older format, ``manifest.sig`` (Ed25519 over manifest.json), is still verified in this
release with a ``LegacySignatureWarning`` (``course_pkg.artifacts.legacy_signing``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from course_pkg.artifacts import legacy_signing
from course_pkg.artifacts.errors import (
    SignatureError,
    SignerMismatchError,
    TamperedPackageError,
    UnsignedPackageError,
)
from course_pkg.datasets.checksums import sha256_file

MANIFEST = "manifest.json"
SIGNATURE = "model.sig"
LEGACY_SIGNATURE = legacy_signing.SIGNATURE
PRIVATE_KEY_FILE = "signing_key.pem"
PUBLIC_KEY_FILE = "signing_key.pub"
SUPPORTED_CURVES = ("secp256r1", "secp384r1", "secp521r1")  # what model-signing accepts


@dataclass(frozen=True)
class PublicKey:
    """A public key as PEM bytes, with where it came from (for error messages)."""

    pem: bytes
    source: str

    @property
    def fingerprint(self) -> str:
        """sha256 of the PEM: the hint model-signing records in ``model.sig``."""
        return hashlib.sha256(self.pem).hexdigest()

    @property
    def is_legacy(self) -> bool:
        return isinstance(serialization.load_pem_public_key(self.pem), Ed25519PublicKey)


def generate_keypair(directory: Path) -> tuple[Path, Path]:
    """Write a new P-256 private key (PEM, mode 0600) and its public key; never overwrite."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / PRIVATE_KEY_FILE, directory / PUBLIC_KEY_FILE
    for existing in (private_path, public_path):
        if existing.exists():
            raise FileExistsError(f"{existing} exists; refusing to overwrite a key")
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    public_path.write_bytes(_public_pem(private.public_key()))
    return private_path, public_path


def _public_pem(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def load_public_key(source: Path | str | bytes | PublicKey | Any) -> PublicKey:
    """A ``PublicKey`` from a PEM file, PEM bytes or a cryptography key object."""
    if isinstance(source, PublicKey):
        return source
    if isinstance(source, (ec.EllipticCurvePublicKey, Ed25519PublicKey)):
        return PublicKey(_public_pem(source), "the given key")
    described = str(source) if isinstance(source, (str, Path)) else "the given key"
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else source
    if not isinstance(data, bytes):
        raise SignatureError(f"{described}: expected a PEM public key, got {type(data).__name__}")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as error:
        raise SignatureError(f"{described}: not a PEM public key ({error})") from error
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name not in SUPPORTED_CURVES:
        raise SignatureError(
            f"{described}: curve {key.curve.name} is not one model-signing supports "
            f"({', '.join(SUPPORTED_CURVES)}); create a key with `course-pkg keygen`"
        )
    if not isinstance(key, (ec.EllipticCurvePublicKey, Ed25519PublicKey)):
        raise SignatureError(f"{described}: not an elliptic-curve (or legacy Ed25519) public key")
    return PublicKey(_public_pem(key), described)


def _private_pem(source: Path | str | bytes | Any) -> bytes:
    """The PEM of a usable signing key, or a SignatureError that says what to do."""
    described = str(source) if isinstance(source, (str, Path)) else "the given key"
    if isinstance(source, ec.EllipticCurvePrivateKey):
        key: Any = source
    else:
        data = Path(source).read_bytes() if isinstance(source, (str, Path)) else source
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as error:
            raise SignatureError(f"{described}: not an unencrypted PEM private key") from error
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SignatureError(
            f"{described}: model-signing signs with elliptic-curve keys (P-256/384/521) only, "
            f"and this key is {type(key).__name__.removeprefix('_')}. (An older `course-pkg "
            "keygen` made Ed25519 keys, which signed the deprecated manifest.sig.) Create a new "
            "pair with `course-pkg keygen --out NEWDIR` and sign with it; `course-pkg sign "
            "--upgrade` replaces an existing manifest.sig."
        )
    if key.curve.name not in SUPPORTED_CURVES:
        raise SignatureError(f"{described}: curve {key.curve.name} is not supported")
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@contextmanager
def _pem_file(pem: bytes) -> Iterator[Path]:
    """model-signing reads keys from paths: hand it a private (0600) temporary copy."""
    with tempfile.TemporaryDirectory(prefix="course-pkg-key-") as tmp:
        path = Path(tmp) / "key.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        yield path


def _symlinks(package: Path) -> list[tuple[str, str]]:
    return [
        (p.relative_to(package).as_posix(), "is a symlink; packages hold regular files only")
        for p in sorted(package.rglob("*"))
        if p.is_symlink()
    ]


def sign_package(package: Path, private_key: Path | str | bytes | Any) -> Path:
    """Sign every file of ``package`` (manifest included) into ``package/model.sig``.

    Refuses a package still carrying the legacy ``manifest.sig`` (``upgrade_signature``
    replaces it) and one containing symlinks. The bundle is written next to the package and
    renamed into place, so a failed signing never leaves a half-written ``model.sig``.
    """
    import model_signing

    package = Path(package)
    if not (package / MANIFEST).is_file():
        raise SignatureError(f"{package}: no {MANIFEST} to sign (package it first)")
    if (package / LEGACY_SIGNATURE).exists():
        raise SignatureError(
            f"{package}: carries the deprecated {LEGACY_SIGNATURE}; replace it with "
            f"`course-pkg sign --upgrade {package} --key NEW.pem --legacy-key OLD.pub`"
        )
    if links := _symlinks(package):
        raise SignatureError(f"{package}: {links[0][0]} {links[0][1]}")
    pem = _private_pem(private_key)
    # model-signing's Config() constructors carry no annotations (hence the type: ignore)
    hashing = model_signing.hashing.Config().set_ignored_paths(  # type: ignore[no-untyped-call]
        paths=[SIGNATURE],
        ignore_git_paths=False,  # every file counts, .gitignore included
    )
    target = package / SIGNATURE
    with _pem_file(pem) as key_path, tempfile.TemporaryDirectory(dir=package.parent) as tmp:
        staged = Path(tmp) / SIGNATURE
        model_signing.signing.Config().use_elliptic_key_signer(  # type: ignore[no-untyped-call]
            private_key=key_path
        ).set_hashing_config(hashing).sign(package, staged)
        os.replace(staged, target)
    return target


def read_bundle(package: Path) -> dict[str, Any]:
    """``model.sig`` as JSON (a Sigstore bundle). Not verified: for reading, not trusting."""
    path = Path(package) / SIGNATURE
    try:
        bundle = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SignatureError(f"{package}: {SIGNATURE} is unreadable ({error})") from error
    if not isinstance(bundle, dict) or "dsseEnvelope" not in bundle:
        raise SignatureError(f"{package}: {SIGNATURE} is malformed (no dsseEnvelope)")
    return bundle


def read_statement(package: Path) -> dict[str, Any]:
    """The in-toto statement inside ``model.sig``: subject, serialization, file digests."""
    try:
        payload = read_bundle(package)["dsseEnvelope"]["payload"]
        statement = json.loads(base64.b64decode(payload, validate=True))
    except (KeyError, TypeError, ValueError) as error:
        raise SignatureError(f"{package}: {SIGNATURE} is malformed ({error!r})") from error
    if not isinstance(statement, dict):
        raise SignatureError(f"{package}: {SIGNATURE} is malformed (statement is not an object)")
    return statement


def signed_digests(statement: dict[str, Any]) -> dict[str, str]:
    """{file name: sha256 hex} from a statement's resources."""
    resources = statement.get("predicate", {}).get("resources", [])
    return {str(r["name"]): str(r["digest"]) for r in resources}


def _differences(
    package: Path, statement: dict[str, Any], *, hash_files: bool = True
) -> list[tuple[str, str]]:
    """Every file that differs from the signed digests (sha256 file serialization).

    ``hash_files=False`` checks only which files are present (after model-signing verified
    the digests, hashing again would only repeat its work).
    """
    serialization_args = statement.get("predicate", {}).get("serialization", {})
    if serialization_args.get("method") != "files" or serialization_args.get("hash_type") != (
        "sha256"
    ):
        return []
    signed = signed_digests(statement)
    ignored = set(serialization_args.get("ignore_paths", [])) | {SIGNATURE}
    problems = []
    present = {
        p.relative_to(package).as_posix(): p
        for p in package.rglob("*")
        if p.is_file() and not p.is_symlink()
    }
    for name, digest in sorted(signed.items()):
        if name not in present:
            problems.append((name, "signed but missing"))
        elif hash_files and sha256_file(present[name]) != digest:
            problems.append((name, "modified after signing (sha256 differs from the signed one)"))
    for name in sorted(set(present) - set(signed)):
        if name == SIGNATURE:
            continue
        why = "excluded by the signer's ignore_paths" if name in ignored else "unexpected file"
        problems.append((name, f"present but not covered by the signature ({why})"))
    return problems


def verify_signature(package: Path, public_key: Path | str | bytes | PublicKey | Any) -> str:
    """Verify ``package``'s signature with ``public_key``; returns the signer's fingerprint.

    ``model.sig`` is checked with model-signing (offline, key-based); a package with only the
    legacy ``manifest.sig`` is checked the old way with a ``LegacySignatureWarning``. Raises a
    ``SignatureError`` subclass: unsigned, another signer, or the files that differ.
    """
    return verified_digests(package, public_key)[0]


def verified_digests(
    package: Path, public_key: Path | str | bytes | PublicKey | Any
) -> tuple[str, dict[str, str] | None]:
    """(signer fingerprint, {file: sha256} as verified) — the one verifier every loader uses.

    The digests let ``verify_package`` check the manifest's hashes without hashing every file
    a second time; they are None for a legacy ``manifest.sig`` (which signs the manifest only).
    """
    package = Path(package)
    key = load_public_key(public_key)
    if not (package / SIGNATURE).exists():
        if (package / LEGACY_SIGNATURE).exists():
            return legacy_signing.verify_legacy_signature(package, key.pem, key.source), None
        raise UnsignedPackageError(
            f"{package}: {SIGNATURE} is missing: the package is not signed (sign it with "
            f"`course-pkg sign {package} --key PRIVATE.pem`)"
        )
    if key.is_legacy:
        raise SignatureError(
            f"{package}: signed with model-signing ({SIGNATURE}, an elliptic-curve key), but "
            f"{key.source} is an Ed25519 key of the deprecated format; use the publisher's "
            "P-256 public key"
        )
    if links := _symlinks(package):
        raise TamperedPackageError(str(package), links)
    hint = read_bundle(package).get("verificationMaterial", {}).get("publicKey", {}).get("hint")
    if hint and hint != key.fingerprint:
        raise SignerMismatchError(str(package), hint, key.fingerprint, key.source)
    _verify_with_model_signing(package, key)
    statement = read_statement(package)  # authentic now: its envelope signature verified
    uncovered = _differences(package, statement, hash_files=False)
    if MANIFEST not in signed_digests(statement):
        uncovered.append((MANIFEST, "not covered by the signature"))
    if uncovered:
        raise TamperedPackageError(str(package), uncovered)
    sha256 = statement["predicate"]["serialization"].get("hash_type") == "sha256"
    return key.fingerprint, signed_digests(statement) if sha256 else None


def _verify_with_model_signing(package: Path, key: PublicKey) -> None:
    import model_signing

    with _pem_file(key.pem) as key_path:
        try:
            verifier = model_signing.verifying.Config()  # type: ignore[no-untyped-call]
            verifier.use_elliptic_key_verifier(public_key=key_path).verify(
                package, package / SIGNATURE
            )
        except InvalidSignature as error:
            raise SignatureError(
                f"{package}: {SIGNATURE}'s signature does not verify with {key.source}: the "
                "bundle was modified after signing (or made with another key)"
            ) from error
        except ValueError as error:
            if str(error).startswith("Signature mismatch"):
                problems = _differences(package, read_statement(package))
                if problems:
                    raise TamperedPackageError(str(package), problems) from error
            raise SignatureError(f"{package}: {SIGNATURE} does not verify: {error}") from error
        except (KeyError, TypeError, OSError) as error:
            raise SignatureError(f"{package}: {SIGNATURE} is malformed ({error!r})") from error
