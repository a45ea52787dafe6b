"""Self-checks for notebook 01 (model formats, manifests, reproducibility)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from course_pkg.checks._registry import CheckFailed, callable_answer, expect, register


@register("01.parity")
def _parity(answer: Any) -> str:
    from sklearn.linear_model import LogisticRegression

    fn = callable_answer(answer, "parity")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    a = LogisticRegression().fit(x, y)
    b = LogisticRegression(C=0.01).fit(x, y)  # a different model: probabilities differ
    same = fn(a, a, x)
    expect(isinstance(same, dict), f"return a dict, got {type(same).__name__}")
    expect(set(same) >= {"max_abs_diff", "labels_agree"}, "keys: max_abs_diff, labels_agree")
    expect(same["max_abs_diff"] == 0 and same["labels_agree"] == 1, "a model vs itself: 0 and 1.0")
    got = fn(a, b, x)
    want_diff = float(np.abs(a.predict_proba(x) - b.predict_proba(x)).max())
    want_agree = float(np.mean(a.predict(x) == b.predict(x)))
    expect(
        abs(got["max_abs_diff"] - want_diff) < 1e-12,
        "max_abs_diff: the largest |p_a - p_b| over all rows and classes of predict_proba",
    )
    expect(abs(got["labels_agree"] - want_agree) < 1e-12, "labels_agree: fraction of equal predict")
    return "compares probabilities and labels like the reference"


@register("01.write_manifest", forbidden=("course_pkg.artifacts.manifest.package_model",))
def _write_manifest(answer: Any) -> str:
    fn = callable_answer(answer, "write_manifest")
    with tempfile.TemporaryDirectory() as tmp:
        files = {"model.onnx": Path(tmp) / "a.bin", "model.skops": Path(tmp) / "b.bin"}
        files["model.onnx"].write_bytes(b"onnx bytes")
        files["model.skops"].write_bytes(b"skops bytes, longer")
        manifest = fn(files, "churn", "1.2.0", 42)
        expect(isinstance(manifest, dict), "return the manifest as a dict")
        for key, value in (("name", "churn"), ("version", "1.2.0"), ("seed", 42)):
            expect(manifest.get(key) == value, f"manifest[{key!r}] should be {value!r}")
        expect(set(manifest.get("files", {})) == set(files), "files: one entry per package name")
        for inside, source in files.items():
            entry = manifest["files"][inside]
            data = source.read_bytes()
            expect(
                entry.get("sha256") == hashlib.sha256(data).hexdigest(),
                f"files[{inside!r}]['sha256'] must be the hex sha256 of its bytes",
            )
            expect(entry.get("bytes") == len(data), f"files[{inside!r}]['bytes'] = file size")
        for bad in ("v1", "1.0", "1.0.0.0", "01.2.3"):
            try:
                fn(files, "churn", bad, 42)
            except ValueError:
                continue
            raise CheckFailed(f"version {bad!r} is not semantic versioning: raise ValueError")
    return "hashes every file, records name/version/seed, rejects non-semver versions"


@register("01.version_drift", forbidden=("course_pkg.artifacts.manifest.version_mismatches",))
def _version_drift(answer: Any) -> str:
    fn = callable_answer(answer, "version_drift")
    manifest = {
        "environment": {
            "libraries": {"scikit-learn": "1.9.1", "numpy": "2.4.6", "onnxruntime": "1.32.0"}
        }
    }
    installed = {"scikit-learn": "1.8.0", "numpy": "2.4.6", "pandas": "3.1.1"}
    got = fn(manifest, installed)
    expect(isinstance(got, list), "return a list of library names")
    expect("numpy" not in got, "numpy matches: it is not drift")
    expect("pandas" not in got, "pandas is not in the manifest: it cannot drift")
    expect("onnxruntime" in got, "a library from the manifest that is not installed is drift")
    expect(got == ["onnxruntime", "scikit-learn"], "sort the names")
    return "finds changed and missing libraries"


# Scenario → (fingerprints of the formats that fit, hint). Fingerprints, not the formats: the
# answer key itself lives with the grader (grader/specs/nb01.py); a student can only learn a
# choice is right by trying it, as with any check.
_FITS: dict[str, tuple[set[str], str]] = {
    "java_service": (
        {"4ce076d7aec98b1d"},
        "only ONNX has runtimes outside Python (Java, C#, C++, JS)",
    ),
    "untrusted_download": (
        {"59ba99dd5057e8c5", "7d014a8d4eb7d07c"},
        "pick a format whose loading cannot run code",
    ),
    "cache_between_steps": (
        {"97fbc5cedc5cfa25", "e9793054414d9739"},
        "same machine and venv, your own file: the fast native formats are fine",
    ),
    "torchserve": (
        {"e5e30e8f16854e20"},
        "TorchServe serves TorchScript archives",
    ),
    "tf_serving": (
        {"0595e8486e2d9293"},
        "TF Serving loads SavedModel directories",
    ),
}


def _fingerprint(scenario: str, choice: str) -> str:
    return hashlib.sha256(f"01.choose_format:{scenario}:{choice}".encode()).hexdigest()[:16]


@register("01.choose_format")
def _choose_format(answer: Any) -> str:
    expect(isinstance(answer, dict), "answer with a dict {scenario: format}")
    missing = sorted(set(_FITS) - set(answer))
    expect(not missing, f"answer every scenario; missing {missing}")
    for scenario, (fits, hint) in _FITS.items():
        choice = str(answer[scenario]).strip().lower()
        expect(
            _fingerprint(scenario, choice) in fits, f"{scenario}: {choice!r} does not fit — {hint}"
        )
    return "every scenario has a format that fits it"
