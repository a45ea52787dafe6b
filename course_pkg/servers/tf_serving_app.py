"""TF Serving's REST API over one SavedModel: the app ``TFServingProcess`` runs under uvicorn.

A module of its own so that ``course_pkg.servers.tensorflow`` (export, the docker line, the
process helper) imports no web framework and no TensorFlow: only the server process, which
runs this module, pays for FastAPI and TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request  # module level: FastAPI resolves string annotations here
from fastapi.responses import JSONResponse

from course_pkg.serving.errors import ApiError
from course_pkg.serving.tfserving import request_data, servable_not_found


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
