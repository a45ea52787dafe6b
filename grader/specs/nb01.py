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


# TorchScript and SavedModel by hand: the probe hands the answer a network built from a seed
# the notebook never used and returns what torch / TensorFlow read back from the file it wrote;
# the host recomputes the network's outputs itself (torch eagerly; numpy for the Keras MLP).
TORCHSCRIPT_SEED, SAVED_MODEL_SEED = 3, 5
TORCHSCRIPT_PROBE = f"""
def probe():
    from course_pkg.checks.nb01 import run_torchscript
    return run_torchscript(torchscript_roundtrip, seed={TORCHSCRIPT_SEED})
"""
SAVED_MODEL_PROBE = f"""
def probe():
    from course_pkg.checks.nb01 import run_saved_model
    seen = run_saved_model(saved_model_signature, seed={SAVED_MODEL_SEED})
    return {{k: v for k, v in seen.items() if k != "format_hint"}}
"""


def _torchscript_expected() -> list[list[float]]:
    from course_pkg.checks.nb01 import torch_expected

    return torch_expected(TORCHSCRIPT_SEED)


def _torchscript_compare(got: Any, expected: list[list[float]]) -> Outcome:
    from course_pkg.checks.nb01 import close

    if not isinstance(got, dict):
        return Outcome(0.0, "torchscript_roundtrip gave no result")
    reported = got.get("reported")
    parts = {
        "a file at the path": got.get("wrote_file") is True,
        "torch.jit.load reads it": got.get("loads") is True,
        "the program matches the network on new rows": close(got.get("outputs"), expected),
        "the difference returned as a float near 0": isinstance(reported, float)
        and abs(reported) <= 1e-5,
    }
    return _parts(parts)


def _parts(parts: dict[str, bool]) -> Outcome:
    wrong = [what for what, ok in parts.items() if not ok]
    feedback = "all right" if not wrong else "not yet: " + "; ".join(wrong)
    return Outcome((len(parts) - len(wrong)) / len(parts), feedback)


def _saved_model_expected() -> dict[str, Any]:
    from course_pkg.checks.nb01 import keras_expected

    return keras_expected(SAVED_MODEL_SEED)


def _saved_model_compare(got: Any, expected: dict[str, Any]) -> Outcome:
    from course_pkg.checks.nb01 import close

    if not isinstance(got, dict):
        return Outcome(0.0, "saved_model_signature gave no result")
    found = got.get("signature")
    signature: dict[str, Any] = found if isinstance(found, dict) else {}
    name, dtype, shape = expected["input"]
    parts = {
        "a SavedModel at the path": got.get("saved_model") is True,
        "a serving_default signature": got.get("serving_default") is True,
        "its input is the model's": signature.get("inputs") == {name: [dtype, shape]},
        "its answers match the model on new rows": close(got.get("outputs"), expected["outputs"]),
        "the signature you returned is the SavedModel's": bool(signature)
        and got.get("reported") == signature,
    }
    return _parts(parts)


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
            "torchscript",
            2,
            "TorchScript by hand: trace, save, load, parity",
            TORCHSCRIPT_PROBE,
            _torchscript_expected,
            _torchscript_compare,
            hint="torch.jit.trace(net, example) → torch.jit.save → torch.jit.load → compare",
            answers=("torchscript_roundtrip",),
        ),
        Question(
            "saved_model",
            2,
            "SavedModel by hand: export, load, read serving_default",
            SAVED_MODEL_PROBE,
            _saved_model_expected,
            _saved_model_compare,
            hint="model.export(path); tf.saved_model.load(path).signatures['serving_default']",
            answers=("saved_model_signature",),
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
