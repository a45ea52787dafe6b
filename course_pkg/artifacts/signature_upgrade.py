"""``course-pkg sign --upgrade``: a verified legacy ``manifest.sig`` → a ``model.sig``.

Above both signature modules (it verifies with one and signs with the other), so neither
imports the other's workflow.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from course_pkg.artifacts.errors import SignatureError
from course_pkg.artifacts.legacy_signing import SIGNATURE, LegacySignatureWarning
from course_pkg.artifacts.manifest import verify_package
from course_pkg.artifacts.signing import load_public_key, sign_package


def upgrade_signature(package: Path, private_key: Any, legacy_public_key: Any) -> Path:
    """Replace a verified ``manifest.sig`` by a model-signing ``model.sig``; returns it.

    The old signature and every hash are checked first (a tampered package is never re-signed).
    ``manifest.sig`` is moved out while signing, so the new signature does not cover it, and
    put back if signing fails: the package always carries one valid signature.
    """
    package = Path(package)
    if not (package / SIGNATURE).exists():
        raise SignatureError(f"{package}: no {SIGNATURE} to upgrade")
    legacy = load_public_key(legacy_public_key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LegacySignatureWarning)  # upgrading is the fix
        verify_package(package, legacy)
    with tempfile.TemporaryDirectory(dir=package.parent) as tmp:
        aside = Path(tmp) / SIGNATURE
        shutil.move(package / SIGNATURE, aside)
        try:
            return sign_package(package, private_key)
        except BaseException:
            shutil.move(aside, package / SIGNATURE)
            raise
