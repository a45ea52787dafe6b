"""Ed25519 signatures over a package's manifest (``manifest.sig``).

The manifest lists the sha256 of every file, so signing the manifest's bytes signs the whole
package: change any file and its hash no longer matches; change the manifest and the
signature no longer verifies. ``manifest.sig`` is JSON: algorithm, key id (the first 16 hex
digits of the public key's sha256, so a wrong key is named as such) and the base64 signature.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from course_pkg.artifacts.errors import SignatureError

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PRIVATE_KEY_FILE = "signing_key.pem"
PUBLIC_KEY_FILE = "signing_key.pub"


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair(directory: Path) -> tuple[Path, Path]:
    """Write a new private key (PEM, mode 0600) and its public key; never overwrite."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / PRIVATE_KEY_FILE, directory / PUBLIC_KEY_FILE
    for existing in (private_path, public_path):
        if existing.exists():
            raise FileExistsError(f"{existing} exists; refusing to overwrite a key")
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    public_path.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path


def _describe(source: Path | bytes) -> str:
    return str(source) if isinstance(source, Path) else "the given key"


def load_private_key(source: Path | bytes | Ed25519PrivateKey) -> Ed25519PrivateKey:
    if isinstance(source, Ed25519PrivateKey):
        return source
    data = source.read_bytes() if isinstance(source, Path) else source
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{_describe(source)}: not an Ed25519 private key")
    return key


def load_public_key(source: Path | bytes | Ed25519PublicKey) -> Ed25519PublicKey:
    if isinstance(source, Ed25519PublicKey):
        return source
    data = source.read_bytes() if isinstance(source, Path) else source
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as error:
        raise SignatureError(f"{_describe(source)}: not a PEM public key ({error})") from error
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"{_describe(source)}: not an Ed25519 public key")
    return key


def sign_package(package: Path, private_key: Path | bytes | Ed25519PrivateKey) -> Path:
    """Sign ``package/manifest.json``; writes ``package/manifest.sig``."""
    key = load_private_key(private_key)
    manifest = package / MANIFEST
    if not manifest.exists():
        raise SignatureError(f"{package}: no {MANIFEST} to sign (package it first)")
    signature = key.sign(manifest.read_bytes())
    payload = {
        "algorithm": "ed25519",
        "key_id": key_id(key.public_key()),
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    target = package / SIGNATURE
    target.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return target


def verify_signature(package: Path, public_key: Path | bytes | Ed25519PublicKey) -> str:
    """Raise ``SignatureError`` unless ``manifest.sig`` verifies; returns the key id."""
    key = load_public_key(public_key)
    sig_path, manifest = package / SIGNATURE, package / MANIFEST
    if not sig_path.exists():
        raise SignatureError(f"{package}: {SIGNATURE} is missing: the package is not signed")
    try:
        payload = json.loads(sig_path.read_text())
        signature = base64.b64decode(payload["signature"], validate=True)
        algorithm, signer = payload["algorithm"], payload["key_id"]
    except (ValueError, KeyError, TypeError) as error:
        raise SignatureError(f"{package}: {SIGNATURE} is malformed ({error!r})") from error
    if algorithm != "ed25519":
        raise SignatureError(f"{package}: unsupported signature algorithm {algorithm!r}")
    expected = key_id(key)
    if signer != expected:
        raise SignatureError(
            f"{package}: signed by key {signer}, but the key you gave is {expected}: "
            "wrong public key, or a package re-signed by someone else"
        )
    try:
        key.verify(signature, manifest.read_bytes())
    except FileNotFoundError as error:
        raise SignatureError(f"{package}: {MANIFEST} is missing") from error
    except InvalidSignature as error:
        raise SignatureError(
            f"{package}: signature does not match {MANIFEST}: the manifest was modified after "
            "signing (or the signature was)"
        ) from error
    return expected
