"""A TensorFlow SavedModel behind TensorFlow Serving's REST API — run here for real.

TensorFlow Serving itself ships only as a Docker image (``tensorflow/serving``) or a source
build: no pip or Debian package, and this machine cannot pull images. What *can* run here is
the protocol: ``create_tf_app`` serves a real SavedModel's ``serving_default`` signature with
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

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request  # module level: FastAPI resolves string annotations here
from fastapi.responses import JSONResponse

from course_pkg.processes import LocalServer, free_port
from course_pkg.serving.errors import ApiError
from course_pkg.serving.tfserving import request_data, servable_not_found

TF_SERVING_IMAGE = "tensorflow/serving:2.19.0"  # the release line matching TensorFlow 2.19+


def export_digits_savedmodel(path: Path, *, epochs: int = 40, seed: int = 7) -> Path:
    """A Keras MLP on the digits (rescale /16 → 32 relu → 10 softmax) exported as a SavedModel
    directory whose ``serving_default`` takes float32 [None, 64] raw pixels."""
    from course_pkg.artifacts.deep import import_tensorflow, save_saved_model
    from course_pkg.datasets.digits import load_digits_training

    import_tensorflow()
    import keras

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


class SavedModelSignature:
    """A SavedModel's ``serving_default``: its single input, its outputs, and ``run``."""

    def __init__(self, saved_model_dir: Path) -> None:
        from course_pkg.artifacts.deep import import_tensorflow

        tf = import_tensorflow()
        self._tf = tf
        self.loaded = tf.saved_model.load(str(saved_model_dir))
        self.function = self.loaded.signatures["serving_default"]
        inputs = self.function.structured_input_signature[1]
        if len(inputs) != 1:
            raise ValueError("this server handles signatures with exactly one input")
        ((self.input_name, spec),) = inputs.items()
        self.input_dtype = spec.dtype
        self.input_shape = spec.shape.as_list()
        self.outputs = {
            name: (tensor.dtype, tensor.shape.as_list())
            for name, tensor in self.function.structured_outputs.items()
        }

    def run(self, batch: Any) -> dict[str, np.ndarray]:
        array = np.asarray(batch, dtype=self.input_dtype.as_numpy_dtype)
        expected = self.input_shape[1:]
        if list(array.shape[1:]) != expected or array.ndim != len(self.input_shape):
            raise ValueError(
                f"input {self.input_name!r} must have shape [batch, "
                f"{', '.join(map(str, expected))}]; got {list(array.shape)}"
            )
        result = self.function(**{self.input_name: self._tf.constant(array)})
        return {name: np.asarray(value) for name, value in result.items()}

    def metadata(self) -> dict[str, Any]:
        from tensorflow.core.framework import types_pb2

        def spec(dtype: Any, shape: list[int | None]) -> dict[str, Any]:
            dims = [{"size": str(-1 if d is None else d)} for d in shape]
            name = types_pb2.DataType.Name(dtype.as_datatype_enum)  # DT_FLOAT, as TF Serving
            return {"dtype": name, "tensor_shape": {"dim": dims}}

        return {
            "serving_default": {
                "inputs": {self.input_name: spec(self.input_dtype, self.input_shape)},
                "outputs": {name: spec(*described) for name, described in self.outputs.items()},
                "method_name": "tensorflow/serving/predict",
            }
        }


def create_tf_app(saved_model_dir: Path, name: str, version: int = 1) -> FastAPI:
    """A FastAPI app answering TF Serving's REST API for one SavedModel."""
    signature = SavedModelSignature(saved_model_dir)
    app = FastAPI(title=f"TF Serving REST API for {name}")

    def error(message: str, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": message}, status)

    def missing(model: str, wanted: str | None) -> JSONResponse | None:
        if model == name and wanted in (None, str(version)):
            return None
        return error(servable_not_found(model, wanted), 404)

    @app.get("/v1/models/{model}")
    async def status(model: str) -> Any:
        if (answer := missing(model, None)) is not None:
            return answer
        ok = {"error_code": "OK", "error_message": ""}
        return {
            "model_version_status": [{"version": str(version), "state": "AVAILABLE", "status": ok}]
        }

    @app.get("/v1/models/{model}/metadata")
    async def metadata(model: str) -> Any:
        if (answer := missing(model, None)) is not None:
            return answer
        return {
            "model_spec": {"name": name, "signature_name": "", "version": str(version)},
            "metadata": {"signature_def": {"signature_def": signature.metadata()}},
        }

    async def predict(request: Request, model: str, wanted: str | None) -> Any:
        if (answer := missing(model, wanted)) is not None:
            return answer
        try:
            body = await request.json()
        except ValueError as problem:
            return error(f"JSON Parse error: {problem}")
        try:
            data, layout = request_data(body)
        except ApiError as problem:
            return error(problem.message, problem.status)
        if isinstance(data, dict):  # named inputs: {"pixels": [...]}
            data = data.get(signature.input_name)
        elif isinstance(data, list) and data and isinstance(data[0], dict):
            data = [row.get(signature.input_name) for row in data]
        try:
            outputs = signature.run(data)
        except (ValueError, TypeError) as problem:
            return error(str(problem))
        single = len(outputs) == 1
        if layout == "row":  # one entry per example
            if single:
                return {"predictions": next(iter(outputs.values())).tolist()}
            count = len(next(iter(outputs.values())))
            rows = [{k: v[i].tolist() for k, v in outputs.items()} for i in range(count)]
            return {"predictions": rows}
        if single:
            return {"outputs": next(iter(outputs.values())).tolist()}
        return {"outputs": {k: v.tolist() for k, v in outputs.items()}}

    @app.post("/v1/models/{target}")
    async def predict_latest(request: Request, target: str) -> Any:
        if not target.endswith(":predict"):
            return error(f"unsupported method in {target!r}; use :predict", 404)
        return await predict(request, target.removesuffix(":predict"), None)

    @app.post("/v1/models/{model}/versions/{target}")
    async def predict_version(request: Request, model: str, target: str) -> Any:
        if not target.endswith(":predict"):
            return error(f"unsupported method in {target!r}; use :predict", 404)
        return await predict(request, model, target.removesuffix(":predict"))

    return app


def app_from_env() -> Any:
    """``uvicorn --factory`` entry point: COURSE_TF_SAVED_MODEL, COURSE_TF_MODEL_NAME."""
    return create_tf_app(
        Path(os.environ["COURSE_TF_SAVED_MODEL"]), os.environ.get("COURSE_TF_MODEL_NAME", "model")
    )


class TFServingProcess(LocalServer):
    """``create_tf_app`` under uvicorn on 127.0.0.1, one worker."""

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
            *("-m", "uvicorn", "course_pkg.servers.tensorflow:app_from_env", "--factory"),
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
