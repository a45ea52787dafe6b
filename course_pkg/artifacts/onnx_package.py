"""``course-pkg export-onnx``: a packaged scikit-learn model → a packaged ONNX model.

The new package keeps the source's name, version, schemas, metrics and training record, and
adds where it came from (the source manifest's sha256, also written into the ONNX file's
``metadata_props``) and the parity report that allowed it to exist. A package-to-package
workflow, so it lives in artifacts (which uses the ONNX codec in ``onnx_export``, never the
other way round).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from course_pkg.artifacts.formats import FORMATS
from course_pkg.artifacts.loading import load_package
from course_pkg.artifacts.manifest import Package, package_model, read_manifest
from course_pkg.artifacts.signing import MANIFEST
from course_pkg.datasets.checksums import sha256_file
from course_pkg.datasets.churn import SEED, churn_input_schema, load_churn, split_churn
from course_pkg.onnx_export.parity import PROBA_ATOL, check_parity
from course_pkg.onnx_export.sklearn_export import TARGET_OPSET, export_sklearn

_SOURCE_PREFERENCE = ("skops", "joblib", "joblib-compressed", "pickle")


def _source_file(manifest: dict[str, Any], package: Path) -> str:
    files = set(manifest["files"])
    for fmt in _SOURCE_PREFERENCE:
        if FORMATS[fmt] in files:
            return FORMATS[fmt]
    raise ValueError(
        f"{package} has no scikit-learn model file "
        f"({', '.join(FORMATS[f] for f in _SOURCE_PREFERENCE)}); nothing to export"
    )


def default_parity_frame(manifest: dict[str, Any]) -> pd.DataFrame:
    """The churn test split, when the package is a churn model; otherwise ask for data."""
    if manifest.get("input_schema") != churn_input_schema():
        raise ValueError(
            "this package is not a course churn model, so there is no default held-out data "
            "for the parity check; pass parity_frame= (CLI: --parity-data FILE.csv)"
        )
    seed = manifest.get("training", {}).get("seed") or SEED
    return split_churn(load_churn(), seed=seed)[1]


def export_package(
    package: str | Path,
    out_dir: str | Path,
    *,
    parity_frame: pd.DataFrame | None = None,
    public_key: Any = None,
    target_opset: dict[str, int] | None = None,
    proba_atol: float = PROBA_ATOL,
    overwrite: bool = False,
) -> Package:
    """Verify and safely load ``package``, export it, check parity, write ``out_dir``."""
    source = Path(package)
    # the manifest only names the file to load; load_package verifies every hash (and the
    # signature) before it deserialises anything, and its manifest is the one used below
    chosen = _source_file(read_manifest(source), source)
    model, opened = load_package(source, public_key, file=chosen)
    manifest = opened.manifest
    frame = parity_frame if parity_frame is not None else default_parity_frame(manifest)
    names = [c["name"] for c in manifest.get("input_schema", [])]
    if names:
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise ValueError(f"parity data lacks the model's input columns {missing}")
        frame = frame.loc[:, names]
    source_sha = sha256_file(source / MANIFEST)
    onnx_model = export_sklearn(
        model,
        frame,
        target_opset=target_opset,
        metadata={
            "model_name": manifest["name"],
            "model_version": manifest["version"],
            "source_manifest_sha256": source_sha,
        },
        verify=False,
    )
    report = check_parity(model, onnx_model, frame, proba_atol=proba_atol).raise_if_failed()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(onnx_model.SerializeToString())
        return package_model(
            {"model.onnx": path},
            Path(out_dir),
            name=manifest["name"],
            version=manifest["version"],
            model_file="model.onnx",
            metrics=manifest.get("metrics"),
            input_schema=manifest.get("input_schema"),
            output_schema=manifest.get("output_schema"),
            training=manifest.get("training"),
            extra={
                **manifest.get("extra", {}),
                "exported_from": {
                    "package": manifest["name"],
                    "version": manifest["version"],
                    "manifest_sha256": source_sha,
                },
                "onnx": {"opsets": dict(target_opset or TARGET_OPSET)},
                "parity": report.as_dict(),
            },
            overwrite=overwrite,
        )
