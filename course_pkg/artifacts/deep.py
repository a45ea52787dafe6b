"""Small neural models in their frameworks' own formats: TorchScript and TF SavedModel.

Both are trained on the churn pipeline's *preprocessed* features (the fitted ColumnTransformer
turns a frame into 17 floats), so the same data flows through every format in notebook 01.
They are deliberately tiny: the point is the file formats, not the accuracy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SEED = 20251125
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def import_tensorflow() -> Any:
    """``import tensorflow`` without its start-up chatter.

    TensorFlow 2.21's C++ runtime prints oneDNN and absl notices straight to file descriptor
    2 before it reads ``TF_CPP_MIN_LOG_LEVEL``; in a notebook they bury the real output. We
    point fd 2 at /dev/null for the import only (Python exceptions still propagate) and
    quiet TensorFlow's Python logger.
    """
    import sys

    if "tensorflow" not in sys.modules:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


@dataclass(frozen=True)
class DeepReport:
    format: str
    file: str
    size_kb: float
    load_ms: float
    max_abs_diff: float
    runs_on_load: str
    portability: str


def _dir_size(path: Path) -> int:
    return (
        sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if path.is_dir()
        else path.stat().st_size
    )


def train_torch_mlp(x: np.ndarray, y: np.ndarray, epochs: int = 30, seed: int = SEED) -> Any:
    """A 17→8→classes MLP trained full-batch with Adam; deterministic for a given seed."""
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 8), torch.nn.ReLU(), torch.nn.Linear(8, int(np.max(y)) + 1)
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    features = torch.as_tensor(np.array(x), dtype=torch.float32)
    target = torch.as_tensor(np.array(y), dtype=torch.long)
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(features), target)
        loss.backward()
        optimizer.step()
    return net.eval()


def save_torchscript(net: Any, path: Path, example: np.ndarray) -> Path:
    """Trace the network into TorchScript: a self-contained program torch can run from C++."""
    import torch

    traced = torch.jit.trace(net, torch.as_tensor(example[:1], dtype=torch.float32))
    torch.jit.save(traced, str(path))
    return path


def train_keras_mlp(x: np.ndarray, y: np.ndarray, epochs: int = 30, seed: int = SEED) -> Any:
    """A 17→8→2 softmax MLP in Keras, trained full-batch with Adam. Its input is named
    ``features``: a SavedModel's signature carries that name (unnamed, Keras numbers its
    tensors in creation order, so the name would depend on what ran before)."""
    import_tensorflow()
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],), name="features"),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    model.fit(x.astype(np.float32), y, epochs=epochs, batch_size=len(x), verbose=0)
    return model


def save_saved_model(model: Any, path: Path) -> Path:
    """Export a TF SavedModel (a directory: graph + variables + signatures) — what TF Serving
    loads. ``serving_default`` takes float32 [None, 17] and returns probabilities."""
    model.export(str(path), format="tf_saved_model", verbose=False)
    return path


def describe_signature(function: Any) -> dict[str, dict[str, tuple[str, list[int | None]]]]:
    """{"inputs": {name: (dtype, shape)}, "outputs": {...}} of one loaded signature function
    (``loaded.signatures["serving_default"]``): the contract a server reads."""
    inputs = function.structured_input_signature[1]
    return {
        "inputs": {k: (v.dtype.name, v.shape.as_list()) for k, v in inputs.items()},
        "outputs": {
            k: (v.dtype.name, v.shape.as_list()) for k, v in function.structured_outputs.items()
        },
    }


def saved_model_signatures(path: Path) -> dict[str, Any]:
    """{signature name: {"inputs": {name: (dtype, shape)}, "outputs": {...}}} of a SavedModel."""
    tf = import_tensorflow()

    loaded = tf.saved_model.load(str(path))
    return {name: describe_signature(function) for name, function in loaded.signatures.items()}


def compare_deep_formats(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, directory: Path, repeats: int = 3
) -> list[DeepReport]:
    """Train both nets, save them, reload ``repeats`` times, compare outputs with in memory."""
    import torch

    tf = import_tensorflow()

    from course_pkg.artifacts.formats import median_ms
    from course_pkg.artifacts.safe_load import safe_load

    directory.mkdir(parents=True, exist_ok=True)
    reports = []

    net = train_torch_mlp(x_train, y_train)
    with torch.no_grad():
        expected = torch.softmax(net(torch.as_tensor(x_test, dtype=torch.float32)), 1).numpy()
    script = save_torchscript(net, directory / "model.torchscript.pt", x_test)
    load_ms, loaded = median_ms(lambda: safe_load(script), repeats)
    with torch.no_grad():
        got = torch.softmax(loaded(torch.as_tensor(x_test, dtype=torch.float32)), 1).numpy()
    reports.append(
        DeepReport(
            "torchscript",
            script.name,
            round(_dir_size(script) / 1024, 1),
            round(load_ms, 2),
            float(np.abs(got - expected).max()),
            "TorchScript ops only (no Python)",
            "libtorch (C++), TorchServe, Python",
        )
    )

    keras_model = train_keras_mlp(x_train, y_train)
    expected = np.asarray(keras_model.predict(x_test.astype(np.float32), verbose=0))
    saved = save_saved_model(keras_model, directory / "saved_model")
    load_ms, loaded = median_ms(lambda: tf.saved_model.load(str(saved)), repeats)
    serve = loaded.signatures["serving_default"]
    outputs = serve(tf.constant(x_test.astype(np.float32)))
    got = np.asarray(next(iter(outputs.values())))
    reports.append(
        DeepReport(
            "saved_model",
            saved.name + "/",
            round(_dir_size(saved) / 1024, 1),
            round(load_ms, 2),
            float(np.abs(got - expected).max()),
            "TF graph ops (no Python; ops may read files)",
            "TF Serving, TF C/C++/Java/JS (converted), Python",
        )
    )
    return reports
