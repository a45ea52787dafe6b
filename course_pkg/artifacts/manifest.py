"""A packaged model: model file(s) + ``manifest.json`` (+ ``model.sig`` when signed).

The manifest records what is needed to trust and reproduce the model: name and semantic
version, the sha256 and size of every file, the Python/library versions and platform it was
built with, the training-data hash and seed, metrics, and the input/output schema a server
validates requests against. JSON is written with sorted keys and a fixed layout, so the same
inputs give the same bytes; ``created`` honours ``SOURCE_DATE_EPOCH`` (reproducible builds).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from course_pkg.artifacts.errors import ArtifactError, IntegrityError
from course_pkg.artifacts.signing import LEGACY_SIGNATURE, MANIFEST, SIGNATURE, verified_digests
from course_pkg.datasets.checksums import sha256_file

MANIFEST_VERSION = 1
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# Libraries whose version changes what a loaded model computes.
TRACKED_LIBRARIES = (
    "scikit-learn",
    "numpy",
    "scipy",
    "pandas",
    "joblib",
    "skops",
    "onnx",
    "onnxruntime",
    "skl2onnx",
    "torch",
    "tensorflow-cpu",
)
REQUIRED_KEYS = ("manifest_version", "name", "version", "files", "model_file", "environment")


class ArtifactVersionWarning(UserWarning):
    """The model was built with library versions different from the ones running now."""


def library_versions(names: tuple[str, ...] = TRACKED_LIBRARIES) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _created(created: datetime | None) -> str:
    if created is None:
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        created = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)
    return created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dumps(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class Package:
    path: Path
    manifest: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.path / str(self.manifest["model_file"])


def package_model(
    files: dict[str, Path],
    out_dir: Path,
    *,
    name: str,
    version: str,
    model_file: str,
    training_data: Path | None = None,
    seed: int | None = None,
    metrics: dict[str, Any] | None = None,
    input_schema: list[dict[str, Any]] | None = None,
    output_schema: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    created: datetime | None = None,
    overwrite: bool = False,
    training: dict[str, Any] | None = None,
) -> Package:
    """Copy ``files`` ({name in package: source path}) into ``out_dir`` with a manifest.

    ``training`` replaces the training record computed from ``training_data``/``seed``
    (a derived package, e.g. an ONNX export, carries its source package's record).

    The package is assembled in a temporary sibling directory and renamed into place, so a
    crash never leaves a half-written package, and an existing ``out_dir`` is only replaced
    when ``overwrite=True``.
    """
    if not NAME.match(name):
        raise ArtifactError(f"name {name!r}: use 1-64 lower-case letters, digits, '-' or '_'")
    if not SEMVER.match(version):
        raise ArtifactError(f"version {version!r} is not semantic versioning (e.g. 1.4.0)")
    if model_file not in files:
        raise ArtifactError(f"model_file {model_file!r} is not one of the files {sorted(files)}")
    reserved = {MANIFEST, SIGNATURE, LEGACY_SIGNATURE} & set(files)
    if reserved:
        raise ArtifactError(f"{sorted(reserved)} are reserved names inside a package")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} exists and is not empty; pass overwrite=True to replace")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        entries = {}
        for inside, source in sorted(files.items()):
            target = staging / inside
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            entries[inside] = {"sha256": sha256_file(target), "bytes": target.stat().st_size}
        manifest: dict[str, Any] = {
            "manifest_version": MANIFEST_VERSION,
            "name": name,
            "version": version,
            "created": _created(created),
            "model_file": model_file,
            "files": entries,
            "environment": {
                "python": platform.python_version(),
                "platform": f"{platform.system()}-{platform.machine()}",
                "libraries": library_versions(),
            },
            "training": training
            or {
                "data_file": training_data.name if training_data else None,
                "data_sha256": sha256_file(training_data) if training_data else None,
                "seed": seed,
            },
            "metrics": metrics or {},
            "input_schema": input_schema or [],
            "output_schema": output_schema or {},
        }
        if extra:
            manifest["extra"] = extra
        (staging / MANIFEST).write_text(dumps(manifest))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Package(out_dir, manifest)


def read_manifest(package: Path) -> dict[str, Any]:
    path = package / MANIFEST
    if not path.exists():
        raise IntegrityError(str(package), [f"{MANIFEST} is missing: not a packaged model"])
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise IntegrityError(str(package), [f"{MANIFEST} is not valid JSON: {error}"]) from error
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise IntegrityError(str(package), [f"{MANIFEST} lacks {', '.join(missing)}"])
    return dict(manifest)


def verify_package(
    package: Path, public_key: Any = None, *, require_signature: bool = False
) -> dict[str, Any]:
    """Check the signature (when a key is given) and every file against the manifest.

    With ``public_key`` the OpenSSF ``model.sig`` is verified through model-signing first
    (every file, manifest included; a legacy ``manifest.sig`` still verifies, with a
    warning); nothing is deserialised before. Raises a ``SignatureError`` subclass for
    signature problems (``UnsignedPackageError``, ``SignerMismatchError``,
    ``TamperedPackageError`` naming the files) and ``IntegrityError`` listing *every* file
    difference from the manifest (changed, missing, resized, unexpected). Returns the manifest.
    """
    package = Path(package)
    signed: dict[str, str] = {}  # digests model-signing verified: no need to hash those again
    if public_key is not None:
        signed = verified_digests(package, public_key)[1] or {}
    elif require_signature:
        raise ArtifactError("require_signature=True needs public_key=")
    manifest = read_manifest(package)
    problems = []
    for name, entry in sorted(manifest["files"].items()):
        file = package / name
        if not file.is_file():
            problems.append(f"{name}: listed in the manifest but missing")
            continue
        size = file.stat().st_size
        if size != entry.get("bytes"):
            problems.append(f"{name}: {size} bytes, manifest says {entry.get('bytes')}")
        if (signed.get(name) or sha256_file(file)) != entry.get("sha256"):
            problems.append(f"{name}: sha256 differs from the manifest (file was modified)")
    listed = set(manifest["files"]) | {MANIFEST, SIGNATURE, LEGACY_SIGNATURE}
    for file in sorted(p for p in package.rglob("*") if p.is_file()):
        name = file.relative_to(package).as_posix()
        if name not in listed:
            problems.append(f"{name}: present but not in the manifest (unexpected file)")
    if problems:
        raise IntegrityError(str(package), problems)
    return manifest


def version_mismatches(manifest: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    """{library: (version in manifest, version installed now)} for every difference."""
    built = manifest.get("environment", {}).get("libraries", {})
    now = library_versions(tuple(built))
    return {lib: (v, now.get(lib)) for lib, v in sorted(built.items()) if now.get(lib) != v}


def warn_on_version_mismatch(manifest: dict[str, Any], relevant: tuple[str, ...]) -> None:
    diff = {k: v for k, v in version_mismatches(manifest).items() if k in relevant}
    if diff:
        listing = ", ".join(
            f"{lib} {built} (now {now or 'not installed'})" for lib, (built, now) in diff.items()
        )
        pins = " ".join(f"{lib}=={built}" for lib, (built, _) in diff.items())
        warnings.warn(
            f"{manifest.get('name')} {manifest.get('version')} was built with {listing}. "
            f"Predictions may differ or loading may fail. Fix: `pip install {pins}`, or "
            "retrain and repackage the model with the versions you run.",
            ArtifactVersionWarning,
            stacklevel=3,
        )
