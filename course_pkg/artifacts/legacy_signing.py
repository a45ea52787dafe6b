"""The deprecated ``manifest.sig`` (Ed25519 over manifest.json): verified, never written anew.

Before model-signing, ``course-pkg sign`` wrote ``manifest.sig``: JSON with the algorithm, a key
id (the first 16 hex digits of the raw public key's sha256) and a base64 Ed25519 signature over
``manifest.json``, whose hashes cover the other files. It is sound but only this project reads
it. In this release a package carrying it still verifies, with a ``LegacySignatureWarning``;
``upgrade_signature`` (``course-pkg sign --upgrade``) replaces it by ``model.sig``. From
course_pkg ``REMOVED_IN`` on it is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import warnings
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from course_pkg.artifacts.errors import SignatureError, SignerMismatchError

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
REMOVED_IN = "0.2.0"  # the course_pkg release that stops accepting manifest.sig


class LegacySignatureWarning(FutureWarning):
    """A package was verified through the deprecated ``manifest.sig``.

    A FutureWarning (Python's category for deprecations aimed at end users, shown by default)
    rather than a DeprecationWarning, which is hidden outside ``__main__``: the person who has
    to act is the one running ``course-pkg verify`` or a server, not a developer under pytest.
    """


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def write_legacy_signature(package: Path, private_key: Ed25519PrivateKey) -> Path:
    """Write an old-format ``manifest.sig`` (only to test and demonstrate the migration)."""
    signature = private_key.sign((package / MANIFEST).read_bytes())
    payload = {
        "algorithm": "ed25519",
        "key_id": key_id(private_key.public_key()),
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    target = package / SIGNATURE
    target.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return target


def verify_legacy_signature(package: Path, public_pem: bytes, source: str) -> str:
    """Check ``manifest.sig`` with an Ed25519 key, warn that it is deprecated; returns the key id.

    The manifest's file hashes are checked by the caller (``verify_package``), as before.
    """
    key = serialization.load_pem_public_key(public_pem)
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(
            f"{package}: carries only the deprecated {SIGNATURE} (Ed25519), and {source} is not "
            "an Ed25519 key: verify it with the old public key, or ask the publisher to re-sign "
            f"it (`course-pkg sign --upgrade {package}`)"
        )
    try:
        payload = json.loads((package / SIGNATURE).read_text())
        signature = base64.b64decode(payload["signature"], validate=True)
        algorithm, signer = payload["algorithm"], payload["key_id"]
    except (ValueError, KeyError, TypeError) as error:
        raise SignatureError(f"{package}: {SIGNATURE} is malformed ({error!r})") from error
    if algorithm != "ed25519":
        raise SignatureError(f"{package}: unsupported signature algorithm {algorithm!r}")
    expected = key_id(key)
    if signer != expected:
        raise SignerMismatchError(str(package), str(signer), expected, source)
    try:
        key.verify(signature, (package / MANIFEST).read_bytes())
    except FileNotFoundError as error:
        raise SignatureError(f"{package}: {MANIFEST} is missing") from error
    except InvalidSignature as error:
        raise SignatureError(
            f"{package}: {SIGNATURE} does not match {MANIFEST}: the manifest was modified after "
            "signing (or the signature was)"
        ) from error
    warnings.warn(
        f"{package}: verified through the deprecated {SIGNATURE} (Ed25519 over {MANIFEST}); "
        f"course_pkg {REMOVED_IN} refuses it. Re-sign in the OpenSSF model-signing format: "
        f"`course-pkg sign --upgrade {package} --key NEW_P256.pem --legacy-key {source}`",
        LegacySignatureWarning,
        stacklevel=4,
    )
    return expected
