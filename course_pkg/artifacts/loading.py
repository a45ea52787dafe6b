"""Open a packaged model: verify first (signature, hashes), then load safely, then warn
about library-version drift in words a person can act on."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from course_pkg.artifacts.errors import UnsupportedFormatError
from course_pkg.artifacts.formats import FORMATS, load_model
from course_pkg.artifacts.manifest import (
    ArtifactVersionWarning,
    Package,
    verify_package,
    warn_on_version_mismatch,
)
from course_pkg.onnx_export.predictor import OnnxPredictor

_FORMAT_BY_FILE = {file: fmt for fmt, file in FORMATS.items()}
_RELEVANT = {
    "onnx": ("onnxruntime",),
    "skops": ("scikit-learn", "numpy", "scipy", "skops"),
}
_DEFAULT_RELEVANT = ("scikit-learn", "numpy", "scipy", "joblib")


def load_package(
    package: str | Path,
    public_key: Any = None,
    *,
    file: str | None = None,
    require_signature: bool = False,
) -> tuple[Any, Package]:
    """(model, package) for ``package``'s model file (or another listed ``file``)."""
    path = Path(package)
    manifest = verify_package(path, public_key, require_signature=require_signature)
    name = file or manifest["model_file"]
    if name not in manifest["files"]:
        raise UnsupportedFormatError(f"{path}: {name!r} is not a file of this package")
    fmt = _FORMAT_BY_FILE.get(name)
    if fmt is None:
        raise UnsupportedFormatError(f"{path}: do not know how to load {name!r}")
    warn_on_version_mismatch(manifest, _RELEVANT.get(fmt, _DEFAULT_RELEVANT))
    model = _load_translating_sklearn_warnings(path / name, fmt, manifest)
    return model, Package(path, manifest)


def load_onnx_package(package: str | Path, public_key: Any = None, **options: Any) -> OnnxPredictor:
    """Verify a package (hashes, and signature with ``public_key``) and open its ONNX file.

    ``options`` go to ``OnnxPredictor`` (threads, ``unknown_categories``); the package's input
    schema becomes the predictor's, and its manifest is kept on ``predictor.manifest``.
    ``OnnxPredictor.from_package`` is this function under the name the notebooks use.
    """
    path = Path(package)
    manifest = verify_package(path, public_key)
    onnx_files = [name for name in manifest["files"] if name.endswith(".onnx")]
    if not onnx_files:
        raise UnsupportedFormatError(
            f"{path} has no .onnx file; run `course-pkg export-onnx {path} --out DIR`"
        )
    name = manifest["model_file"] if manifest["model_file"] in onnx_files else onnx_files[0]
    warn_on_version_mismatch(manifest, ("onnxruntime",))
    predictor = OnnxPredictor(path / name, schema=manifest.get("input_schema") or None, **options)
    predictor.manifest = manifest
    return predictor


def _load_translating_sklearn_warnings(path: Path, fmt: str, manifest: dict[str, Any]) -> Any:
    """scikit-learn's InconsistentVersionWarning names an estimator but not a fix; say one."""
    from sklearn.exceptions import InconsistentVersionWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        model = load_model(path, fmt)
    for item in caught:
        message = item.message
        if isinstance(message, InconsistentVersionWarning):
            warnings.warn(
                f"{path}: {message.estimator_name} was pickled with scikit-learn "
                f"{message.original_sklearn_version} and is loaded with "
                f"{message.current_sklearn_version}; its predictions are not guaranteed. Fix: "
                f"`pip install scikit-learn=={message.original_sklearn_version}` to use it as "
                "is, or retrain and repackage it with the version you run.",
                ArtifactVersionWarning,
                stacklevel=3,
            )
        else:
            warnings.warn_explicit(
                message, item.category, item.filename, item.lineno, source=item.source
            )
    return model
