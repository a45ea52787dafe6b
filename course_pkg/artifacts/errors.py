"""The exceptions course_pkg.artifacts raises, in one place.

ArtifactError                     anything wrong with a model artifact (a CourseError: catch either)
├── UnsafeArtifactError           bytes that would import or call something not allowlisted
├── UnsupportedFormatError        not a format we know how to load safely
│   └── MalformedArtifactError    a known format that does not parse (damaged zip, bad CRC, …)
├── IntegrityError                files do not match the manifest (hash, size, missing, extra)
└── SignatureError                the signature is missing, malformed, or does not verify
    ├── UnsignedPackageError      no model.sig (nor a legacy manifest.sig) in the package
    ├── SignerMismatchError       signed, but by another key than the one you trust
    └── TamperedPackageError      files differ from what the signature covers (names them)
"""

from __future__ import annotations

from course_pkg.errors import CourseError


class ArtifactError(CourseError):
    """Base class: a model artifact could not be used as it is."""


class UnsafeArtifactError(ArtifactError):
    """Loading would import or call something outside the allowlist.

    ``global_name`` is ``module.name`` (or a short reason such as ``trailing data``) and
    ``offset`` the byte offset of the offending opcode in the (decompressed) pickle stream.
    """

    def __init__(self, global_name: str, offset: int | None, source: str, detail: str = "") -> None:
        self.global_name = global_name
        self.offset = offset
        self.source = source
        where = f" at byte {offset}" if offset is not None else ""
        reason = detail or f"imports {global_name}, which is not on the allowlist"
        super().__init__(
            f"{source}: refused to load: {reason}{where}. Nothing was deserialised. "
            "If you trust this file and its author, add the global to the allowlist "
            "(course_pkg.artifacts.allowlist) after reading what it does; otherwise re-export "
            "the model in a format that cannot execute code (ONNX or skops)."
        )


class UnsupportedFormatError(ArtifactError):
    """The bytes are not a model format that safe_load understands."""


class IntegrityError(ArtifactError):
    """A packaged model does not match its manifest; ``problems`` lists every difference."""

    def __init__(self, package: str, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n  - ".join(problems)
        super().__init__(f"{package}: package does not match its manifest:\n  - {listing}")


class SignatureError(ArtifactError):
    """The package signature is missing, malformed or does not verify with the given key."""


# --- OpenSSF model-signing verification (course_pkg.artifacts.signing) ----------------------


class UnsignedPackageError(SignatureError):
    """A signature was required but the package carries none."""


class SignerMismatchError(SignatureError):
    """The signature is valid for *some* key, not the one the caller trusts.

    ``signed_by`` is the fingerprint recorded in the bundle (sha256 of the signer's public-key
    PEM), ``expected`` the fingerprint of the key the caller gave.
    """

    def __init__(self, package: str, signed_by: str, expected: str, key_source: str) -> None:
        self.signed_by, self.expected = signed_by, expected
        super().__init__(
            f"{package}: signed by the key with fingerprint {signed_by[:16]}…, but the key "
            f"expected is {key_source} (fingerprint {expected[:16]}…): wrong public key, or a "
            "package re-signed by someone else. Verify with the publisher's public key."
        )


class TamperedPackageError(SignatureError):
    """The signature is genuine, but files differ from the digests it signed.

    ``files`` names every file that differs; ``problems`` says how (modified, missing, extra).
    """

    def __init__(self, package: str, problems: list[tuple[str, str]]) -> None:
        self.files = [name for name, _ in problems]
        self.problems = [f"{name}: {what}" for name, what in problems]
        listing = "\n  - ".join(self.problems)
        super().__init__(
            f"{package}: the package does not match its signature (model.sig), so it was changed "
            f"after signing; nothing was loaded:\n  - {listing}"
        )


class MalformedArtifactError(UnsupportedFormatError):
    """The bytes claim a known format but do not parse: a damaged zip, a truncated stream, or
    a library (torch, numpy, skops) that refused to read them. ``reason`` says which, and
    ``offset`` where in the file, when known. Subclasses UnsupportedFormatError so code that
    already catches that keeps working."""

    def __init__(self, source: str, reason: str, offset: int | None = None) -> None:
        self.source = source
        self.reason = reason
        self.offset = offset
        where = f" (at byte {offset})" if offset is not None else ""
        super().__init__(f"{source}: cannot be read safely: {reason}{where}")
