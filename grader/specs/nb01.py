"""Hidden grading spec for notebook 01 (model formats)."""

from __future__ import annotations

import hashlib
from typing import Any

from grader.specs.model import Assignment, Outcome, Question, fraction_equal

PARITY_SETUP = """
import numpy as _np
from sklearn.linear_model import LogisticRegression as _LR
_rng = _np.random.default_rng(11)
_x = _rng.normal(size=(300, 4))
_y = (_x[:, 0] - _x[:, 2] + 0.3 * _rng.normal(size=300) > 0).astype(int)
_a = _LR().fit(_x, _y)
_b = _LR(C=0.05).fit(_x, _y)
"""
PARITY_PROBE = (
    PARITY_SETUP
    + """
def probe():
    same, other = parity(_a, _a, _x), parity(_a, _b, _x)
    keys = ("max_abs_diff", "labels_agree")
    return [same[k] for k in keys] + [other[k] for k in keys]
"""
)


def _parity_expected() -> list[float]:
    scope: dict[str, Any] = {}
    exec(PARITY_SETUP, scope)  # the same inputs the probe builds, computed here on the host
    a, b, x = scope["_a"], scope["_b"], scope["_x"]
    import numpy as np

    diff = float(np.abs(a.predict_proba(x) - b.predict_proba(x)).max())
    return [0.0, 1.0, diff, float(np.mean(a.predict(x) == b.predict(x)))]


def _close(got: Any, expected: list[float]) -> Outcome:
    if not isinstance(got, list) or len(got) != len(expected):
        return Outcome(0.0, "parity must return the two keys for every comparison")
    right = sum(
        isinstance(g, int | float) and abs(g - e) < 1e-9 for g, e in zip(got, expected, strict=True)
    )
    return Outcome(right / len(expected), f"{right} of {len(expected)} values right")


FILES = {"model.onnx": b"graded onnx", "model.skops": b"graded skops bytes", "extra/a.txt": b""}
MANIFEST_PROBE = f"""
def probe():
    import tempfile, pathlib
    root = pathlib.Path(tempfile.mkdtemp())
    files = {{}}
    for i, (name, data) in enumerate({FILES!r}.items()):
        path = root / f"src{{i}}"
        path.write_bytes(data)
        files[name] = path
    m = write_manifest(files, "graded", "2.10.3", 7)
    bad = []
    for version in ["2.10", "v2.10.3", "2.010.3", "2.10.3.1"]:
        try:
            write_manifest(files, "graded", version, 7)
            bad.append(False)
        except ValueError:
            bad.append(True)
    return {{"name": m.get("name"), "version": m.get("version"), "seed": m.get("seed"),
            "files": m.get("files"), "rejects_bad_versions": bad}}
"""


def _manifest_expected() -> dict[str, Any]:
    return {
        "name": "graded",
        "version": "2.10.3",
        "seed": 7,
        "files": {
            k: {"sha256": hashlib.sha256(v).hexdigest(), "bytes": len(v)} for k, v in FILES.items()
        },
        "rejects_bad_versions": [True, True, True, True],
    }


def _manifest_compare(got: Any, expected: dict[str, Any]) -> Outcome:
    if not isinstance(got, dict):
        return Outcome(0.0, "write_manifest must return a dict")
    parts = [got.get(k) == expected[k] for k in ("name", "version", "seed")]
    parts.append(got.get("files") == expected["files"])
    parts += [g is True for g in got.get("rejects_bad_versions", [])][:4]
    right = sum(parts)
    return Outcome(right / 8, f"{right} of 8 manifest checks right")


DRIFT_ARGS = (
    {
        "environment": {
            "libraries": {
                "torch": "2.13.0+cpu",
                "numpy": "2.4.6",
                "skops": "0.16.0",
                "onnx": "1.23.2",
            }
        }
    },
    {"torch": "2.13.0", "numpy": "2.4.6", "onnx": "1.23.2", "scipy": "1.17.1"},
)
DRIFT_PROBE = f"""
def probe():
    return list(version_drift({DRIFT_ARGS[0]!r}, {DRIFT_ARGS[1]!r}))
"""

CHOICES = {
    "java_service": {"onnx"},
    "untrusted_download": {"skops", "onnx"},
    "cache_between_steps": {"joblib", "pickle"},
    "torchserve": {"torchscript"},
    "tf_serving": {"saved_model"},
}
CHOICE_PROBE = """
def probe():
    return {k: str(v).strip().lower() for k, v in dict(choices).items()}
"""


def _choices_compare(got: Any, expected: dict[str, list[str]]) -> Outcome:
    if not isinstance(got, dict):
        return Outcome(0.0, "choices must be a dict")
    right = sum(got.get(k) in ok for k, ok in expected.items())
    return Outcome(right / len(expected), f"{right} of {len(expected)} scenarios right")


ASSIGNMENT = Assignment(
    id="01",
    notebook="01_model_formats.ipynb",
    title="Model formats",
    questions=(
        Question(
            "parity",
            2,
            "Prediction parity",
            PARITY_PROBE,
            _parity_expected,
            _close,
            hint="max |p_a - p_b| over predict_proba; share of equal predict",
        ),
        Question(
            "write_manifest",
            3,
            "Write a manifest",
            MANIFEST_PROBE,
            _manifest_expected,
            _manifest_compare,
            hint="sha256 + bytes per file; strict MAJOR.MINOR.PATCH",
            answers=("write_manifest",),
        ),
        Question(
            "version_drift",
            2,
            "Detect library drift",
            DRIFT_PROBE,
            lambda: ["skops", "torch"],
            hint="sorted; a missing library is drift",
            answers=("version_drift",),
        ),
        Question(
            "choose_format",
            2,
            "Choose a format",
            CHOICE_PROBE,
            lambda: {k: sorted(v) for k, v in CHOICES.items()},
            _choices_compare,
        ),
    ),
    cell_timeout=180,
    wall_timeout=420,
    memory="3g",
)

__all__ = ["ASSIGNMENT", "fraction_equal"]
