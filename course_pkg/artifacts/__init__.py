"""Model artifacts: formats, manifests, signatures and safe loading (notebooks 01-02).

The layer above ``onnx_export``: the ``onnx`` format and the ONNX package workflow use it."""

from course_pkg.artifacts.allowlist import DEFAULT as DEFAULT_ALLOWLIST
from course_pkg.artifacts.allowlist import Allowlist
from course_pkg.artifacts.errors import (
    ArtifactError,
    IntegrityError,
    SignatureError,
    SignerMismatchError,
    TamperedPackageError,
    UnsafeArtifactError,
    UnsignedPackageError,
    UnsupportedFormatError,
)
from course_pkg.artifacts.formats import compare_formats, load_model, save_model
from course_pkg.artifacts.legacy_signing import LegacySignatureWarning
from course_pkg.artifacts.loading import load_onnx_package, load_package
from course_pkg.artifacts.manifest import (
    ArtifactVersionWarning,
    Package,
    package_model,
    read_manifest,
    verify_package,
)
from course_pkg.artifacts.onnx_package import default_parity_frame, export_package
from course_pkg.artifacts.pickle_scan import ScanReport, opcode_listing, scan_bytes
from course_pkg.artifacts.safe_load import Verdict, safe_load, scan_file, sniff
from course_pkg.artifacts.signature_upgrade import upgrade_signature
from course_pkg.artifacts.signing import (
    generate_keypair,
    load_public_key,
    read_statement,
    sign_package,
    verify_signature,
)

__all__ = [
    "DEFAULT_ALLOWLIST",
    "Allowlist",
    "ArtifactError",
    "ArtifactVersionWarning",
    "IntegrityError",
    "LegacySignatureWarning",
    "Package",
    "ScanReport",
    "SignatureError",
    "SignerMismatchError",
    "TamperedPackageError",
    "UnsafeArtifactError",
    "UnsignedPackageError",
    "UnsupportedFormatError",
    "Verdict",
    "compare_formats",
    "default_parity_frame",
    "export_package",
    "generate_keypair",
    "load_model",
    "load_onnx_package",
    "load_package",
    "load_public_key",
    "opcode_listing",
    "package_model",
    "read_manifest",
    "read_statement",
    "safe_load",
    "save_model",
    "scan_bytes",
    "scan_file",
    "sign_package",
    "sniff",
    "upgrade_signature",
    "verify_package",
    "verify_signature",
]
