"""The exceptions course_pkg.artifacts raises, in one place.

ArtifactError                     anything wrong with a model artifact (catch this one)
├── UnsafeArtifactError           bytes that would import or call something not allowlisted
├── UnsupportedFormatError        not a format we know how to load safely
├── IntegrityError                files do not match the manifest (hash, size, missing, extra)
└── SignatureError                manifest.sig missing, malformed, or not from the given key
"""

from __future__ import annotations


class ArtifactError(Exception):
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
