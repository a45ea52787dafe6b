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


# --- TorchScript and SavedModel, written by hand ------------------------------------------
# Each check hands the answer a *fresh* network (weights from a seed the check picks), lets it
# write its file, then opens that file with the framework itself and runs it on rows the
# answer never saw. The ``run_*`` functions return plain JSON observations, so the grader's
# probe (grader/specs/nb01.py) runs the same code in the sandbox and judges on the host.


def torch_case(seed: int) -> tuple[Any, Any, Any]:
    """(net, example, fresh rows): a 5-8 input MLP with seeded weights, 4 example rows and 9
    rows of another batch size (a traced program must not be tied to the example's)."""
    import torch

    inputs = 5 + seed % 4
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # the student's global RNG is left as it was
        torch.manual_seed(seed)
        net = torch.nn.Sequential(
            torch.nn.Linear(inputs, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)
        ).eval()
    example = torch.randn(4, inputs, generator=generator)
    fresh = torch.randn(9, inputs, generator=generator)
    return net, example, fresh


def run_torchscript(fn: Any, seed: int) -> dict[str, Any]:
    """Call ``fn(net, example, path)``, then load ``path`` with ``torch.jit.load``."""
    import torch

    net, example, fresh = torch_case(seed)
    with tempfile.TemporaryDirectory(prefix="nb01-ts-") as tmp:
        path = Path(tmp) / "net.pt"
        reported = fn(net, example, path)
        seen: dict[str, Any] = {"wrote_file": path.is_file(), "loads": False, "outputs": None}
        seen["reported"] = _number(reported)
        if not seen["wrote_file"]:
            return seen
        try:
            loaded = torch.jit.load(str(path))  # type: ignore[no-untyped-call]
        except (RuntimeError, ValueError):  # not a TorchScript archive (e.g. torch.save)
            return seen
        seen["loads"] = True
        with torch.no_grad():
            seen["outputs"] = loaded(fresh).tolist()
            seen["example_diff"] = float((loaded(example) - net(example)).abs().max())
    return seen


def _number(value: Any) -> float | None:
    """A plain number as float (a tensor or a string is not one: the hint says so)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        return None
    return float(value)


def torch_expected(seed: int) -> list[list[float]]:
    """The eager network's outputs on the fresh rows: what a faithful program gives."""
    import torch

    net, _, fresh = torch_case(seed)
    with torch.no_grad():
        outputs: list[list[float]] = net(fresh).tolist()
    return outputs


def close(got: Any, want: list[list[float]], tolerance: float = 1e-5) -> bool:
    """Same shape, every value within ``tolerance``."""
    try:
        values = np.asarray(got, dtype=float)
    except (TypeError, ValueError):
        return False
    return values.shape == np.shape(want) and bool(np.abs(values - want).max() <= tolerance)


@register("01.torchscript", forbidden=("course_pkg.artifacts.deep.save_torchscript",))
def _torchscript(answer: Any) -> str:
    seen = run_torchscript(callable_answer(answer, "torchscript_roundtrip"), seed=0)
    expect(
        seen["wrote_file"],
        "no file at the path you were given: write the program there with "
        "torch.jit.save(traced, path)",
    )
    expect(
        seen["loads"],
        "torch.jit.load cannot read your file: it holds no TorchScript program (torch.save "
        "pickles the Python module instead). Save torch.jit.trace(net, example) with "
        "torch.jit.save",
    )
    expect(
        close(seen["outputs"], torch_expected(0)),
        "the saved program's outputs on 9 new rows differ from the network's: trace the "
        "network you are given (net, not a new one), with the example you are given",
    )
    expect(
        seen["reported"] is not None,
        "return the largest difference as a float: float((loaded(example) - net(example))"
        ".abs().max())",
    )
    expect(
        abs(seen["reported"] - seen["example_diff"]) <= 1e-6,
        f"you returned {seen['reported']:.3g}, but the largest |loaded(example) - net(example)| "
        f"is {seen['example_diff']:.3g}: load the file back with torch.jit.load and compare",
    )
    return "torch.jit.load reads your file, and it matches the network on 9 rows it never saw"


def keras_weights(seed: int) -> tuple[str, list[np.ndarray], np.ndarray]:
    """(input name, weights, fresh rows) of a 4-6 input → 5 relu → 3 softmax MLP. The input
    name is one the answer cannot guess, so a reported signature must be read, not typed."""
    rng = np.random.default_rng(seed)
    inputs = 4 + seed % 3
    name = f"features_{rng.integers(100, 999)}"
    shapes = [(inputs, 5), (5,), (5, 3), (3,)]
    weights = [rng.normal(size=shape).astype(np.float32) for shape in shapes]
    return name, weights, rng.normal(size=(7, inputs)).astype(np.float32)


def keras_case(seed: int) -> tuple[Any, np.ndarray]:
    """(model, fresh rows): the MLP of ``keras_weights`` as a Keras model."""
    from course_pkg.artifacts.deep import import_tensorflow

    import_tensorflow()
    import keras

    name, weights, fresh = keras_weights(seed)
    model = keras.Sequential(
        [
            keras.Input((weights[0].shape[0],), name=name),
            keras.layers.Dense(5, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.set_weights(weights)
    return model, fresh


def keras_expected(seed: int) -> dict[str, Any]:
    """What the model computes on the fresh rows (numpy, no TensorFlow), and its input."""
    name, (w1, b1, w2, b2), fresh = keras_weights(seed)
    logits = np.maximum(fresh @ w1 + b1, 0) @ w2 + b2
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return {
        "outputs": (exp / exp.sum(axis=1, keepdims=True)).tolist(),
        "input": [name, "float32", [None, w1.shape[0]]],
    }


def normal_signature(reported: Any) -> dict[str, dict[str, list[Any]]]:
    """``{"inputs": {name: (dtype, shape)}, "outputs": {...}}`` as JSON lists; dtypes and
    shapes may be TensorFlow's own objects. CheckFailed, with the format, if it is not that."""
    hint = (
        'return {"inputs": {name: (dtype, shape)}, "outputs": {name: (dtype, shape)}}, e.g. '
        '{"inputs": {"x": ("float32", [None, 17])}, ...}'
    )
    expect(isinstance(reported, dict) and set(reported) == {"inputs", "outputs"}, hint)
    normal: dict[str, dict[str, list[Any]]] = {}
    for side in ("inputs", "outputs"):
        entries = reported[side]
        expect(isinstance(entries, dict) and bool(entries), f"{side}: {hint}")
        normal[side] = {}
        for name, entry in entries.items():
            expect(isinstance(entry, tuple | list) and len(entry) == 2, f"{side}[{name!r}]: {hint}")
            dtype, shape = entry
            dtype = getattr(dtype, "name", dtype)
            if hasattr(shape, "as_list"):
                shape = shape.as_list()
            expect(isinstance(shape, tuple | list), f"{side}[{name!r}]: the shape as a list")
            normal[side][str(name)] = [str(dtype), [None if d is None else int(d) for d in shape]]
    return normal


def run_saved_model(fn: Any, seed: int) -> dict[str, Any]:
    """Call ``fn(model, path)``, then load ``path`` with ``tf.saved_model.load`` and run its
    ``serving_default`` on the fresh rows."""
    from course_pkg.artifacts.deep import describe_signature, import_tensorflow

    tf = import_tensorflow()
    model, fresh = keras_case(seed)
    with tempfile.TemporaryDirectory(prefix="nb01-sm-") as tmp:
        path = Path(tmp) / "saved_model"
        reported = fn(model, path)
        seen: dict[str, Any] = {"saved_model": tf.saved_model.contains_saved_model(str(path))}
        seen.update(serving_default=False, outputs=None, signature=None)
        try:
            seen["reported"] = normal_signature(reported)
        except CheckFailed as failed:
            seen["reported"], seen["format_hint"] = None, str(failed)
        if not seen["saved_model"]:
            return seen
        loaded = tf.saved_model.load(str(path))
        serve = loaded.signatures.get("serving_default")
        if serve is None:
            return seen
        seen["serving_default"] = True
        seen["signature"] = {
            side: {k: [dtype, shape] for k, (dtype, shape) in entries.items()}
            for side, entries in describe_signature(serve).items()
        }
        inputs, outputs = seen["signature"]["inputs"], seen["signature"]["outputs"]
        if len(inputs) == 1 and len(outputs) == 1:  # else: not the model it was given
            answer = serve(**{next(iter(inputs)): tf.constant(fresh)})
            seen["outputs"] = np.asarray(next(iter(answer.values()))).tolist()
    return seen


@register(
    "01.saved_model",
    forbidden=(
        "course_pkg.artifacts.deep.save_saved_model",
        "course_pkg.artifacts.deep.saved_model_signatures",
    ),
)
def _saved_model(answer: Any) -> str:
    seen = run_saved_model(callable_answer(answer, "saved_model_signature"), seed=0)
    want = keras_expected(0)
    expect(
        seen["saved_model"],
        "no SavedModel at the path you were given: model.export(path) (Keras 3) writes "
        "saved_model.pb and variables/ there",
    )
    expect(
        seen["serving_default"],
        "your SavedModel has no 'serving_default' signature, so TF Serving could not call it: "
        "export with model.export(path), which writes one",
    )
    signature = seen["signature"]
    name, dtype, shape = want["input"]
    expect(
        signature["inputs"] == {name: [dtype, shape]},
        f"serving_default takes {signature['inputs']}, not the model's input {name!r} "
        f"({dtype}, {shape}): export the model you are given",
    )
    expect(
        close(seen["outputs"], want["outputs"]),
        "serving_default's answers on 7 new rows differ from the model's: export the model "
        "you are given, as it is",
    )
    expect(seen["reported"] is not None, seen.get("format_hint", ""))
    for side in ("inputs", "outputs"):
        expect(
            seen["reported"][side] == signature[side],
            f"{side}: you reported {seen['reported'][side]}, the SavedModel's serving_default "
            f"has {signature[side]} — read them from tf.saved_model.load(path)"
            ".signatures['serving_default'] (structured_input_signature, structured_outputs)",
        )
    return "a SavedModel with serving_default, same answers on 7 new rows, signature read right"
