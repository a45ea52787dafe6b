"""A TensorFlow SavedModel behind TensorFlow Serving's REST API — run here for real.

TensorFlow Serving itself ships only as a Docker image (``tensorflow/serving``) or a source
build: no pip or Debian package, and this machine cannot pull images. What *can* run here is
the protocol: ``tf_serving_app.create_tf_app`` (a module of its own: importing this one
stays light) serves a real SavedModel's ``serving_default`` signature with
TF Serving's REST routes and answer shapes, so a client written against it works unchanged
against the real server, started as ``tf_serving_docker_command`` prints. The same request
also works against the reference server's TF Serving route (``course_pkg.serving.tfserving``),
which serves ONNX packages and answers with labels *and* probabilities.

    saved = export_digits_savedmodel(Path("build/digits_savedmodel"))
    with TFServingProcess(saved, "digits") as server:
        httpx.post(f"{server.url}/v1/models/digits:predict", json={"instances": [pixels]})

Routes: ``GET /v1/models/{name}`` (status), ``GET /v1/models/{name}/metadata`` (signatures),
``POST /v1/models/{name}[/versions/{v}]:predict`` with ``instances`` (row format →
``{"predictions": …}``) or ``inputs`` (columnar → ``{"outputs": …}``); errors are
``{"error": "…"}`` with status 400, or 404 ``Servable not found for request: Latest(name)``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from course_pkg.processes import LocalServer, free_port

TF_SERVING_IMAGE = "tensorflow/serving:2.19.0"  # the release line matching TensorFlow 2.19+


def export_digits_savedmodel(path: Path, *, epochs: int = 40, seed: int = 7) -> Path:
    """A Keras MLP on the digits (rescale /16 → 32 relu → 10 softmax) exported as a SavedModel
    directory whose ``serving_default`` takes float32 [None, 64] raw pixels."""
    from course_pkg.artifacts.deep import import_tensorflow, save_saved_model
    from course_pkg.datasets.digits import load_digits_training

    import_tensorflow()
    import keras
    import numpy as np

    x, y = load_digits_training()
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((64,), name="pixels"),
            keras.layers.Rescaling(1 / 16),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy")
    model.fit(np.asarray(x, np.float32), np.asarray(y), epochs=epochs, batch_size=256, verbose=0)
    return save_saved_model(model, Path(path))


def tf_serving_docker_command(saved_model_dir: Path, name: str, version: int = 1) -> str:
    """What a user with Docker Hub access runs to serve the same SavedModel with the real
    TF Serving (REST on 127.0.0.1:8501). TF Serving wants ``/models/<name>/<version>/``."""
    return (
        f"docker run --rm -p 127.0.0.1:8501:8501 "
        f"-v {Path(saved_model_dir).resolve()}:/models/{name}/{version}:ro "
        f"-e MODEL_NAME={name} {TF_SERVING_IMAGE}"
    )


class TFServingProcess(LocalServer):
    """``tf_serving_app.create_tf_app`` under uvicorn on 127.0.0.1, one worker."""

    what = "TF Serving REST (SavedModel)"

    def __init__(
        self,
        saved_model_dir: Path,
        name: str,
        *,
        port: int | None = None,
        startup_timeout: float = 90.0,
        command_prefix: Sequence[str] = (),
    ) -> None:
        port = port or free_port()
        command = [
            sys.executable,
            *("-m", "uvicorn", "course_pkg.servers.tf_serving_app:app_from_env", "--factory"),
            *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        ]
        env = {
            "COURSE_TF_SAVED_MODEL": str(Path(saved_model_dir).resolve()),
            "COURSE_TF_MODEL_NAME": name,
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        super().__init__(
            command,
            port=port,
            env=env,
            ready_path=f"/v1/models/{name}",
            startup_timeout=startup_timeout,
            command_prefix=command_prefix,
        )
