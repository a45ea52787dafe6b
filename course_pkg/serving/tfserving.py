"""TensorFlow Serving's REST predict API: ``POST /v1/models/{name}[/versions/{v}]:predict``.

Request formats (https://www.tensorflow.org/tfx/serving/api_rest#predict_api):

- row ("instances"): a list with one entry per example — for a model with named inputs, an
  object ``{input: value}``; for a single-input model, the value itself (e.g. 64 pixels);
- columnar ("inputs"): ``{input: [values...]}``, or the bare list for a single-input model.

Responses follow TF Serving: row format → ``{"predictions": [{"label": …, "probabilities":
[…]}, …]}`` (one object per example, because the model has two named outputs); columnar →
``{"outputs": {"label": […], "probabilities": [[…], …]}}``. Errors are ``{"error": "…"}``.
A bare integer version means the highest loaded version with that major number (TF Serving
versions are integers; ours are semantic versions, which also work).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from course_pkg.serving import openapi_operations
from course_pkg.serving.endpoints import Endpoint
from course_pkg.serving.errors import ApiError, not_found
from course_pkg.serving.http import (
    admit,
    json_response,
    plain_error,
    read_json,
    run_model,
    serving_model,
    settings_of,
)
from course_pkg.serving.registry import ServedModel


def request_data(body: Any) -> tuple[Any, str]:
    """A predict body's data and layout ("row" for ``instances``, "columnar" for ``inputs``),
    after TF Serving's own checks (400 ``ApiError`` with its messages). Shared with
    ``course_pkg.servers.tensorflow``, which serves SavedModels with this protocol."""
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    signature = body.get("signature_name", "serving_default")
    if signature != "serving_default":
        raise ApiError(
            400, "bad_request", f'Serving signature name: "{signature}" not found in signature def'
        )
    if ("instances" in body) == ("inputs" in body):
        raise ApiError(
            400, "bad_request", "JSON Value: must have exactly one of 'instances' or 'inputs'"
        )
    if "instances" in body:
        return body["instances"], "row"
    return body["inputs"], "columnar"


def servable_not_found(name: str, version: str | None) -> str:
    """TF Serving's 404 message for an unknown model or version."""
    what = f"Latest({name})" if version is None else f"Specific({name}, {version})"
    return f"Servable not found for request: {what}"


def _rows(body: Any, served: ServedModel) -> tuple[list[dict[str, Any]], str]:
    data, layout = request_data(body)
    columns = served.schema.columns
    single = len(columns) == 1
    if layout == "row":
        if not isinstance(data, list):
            raise ApiError(400, "bad_request", "'instances' must be a list")
        if single and data and not isinstance(data[0], dict):
            return [{columns[0]: value} for value in data], "row"
        return data, "row"
    if single and isinstance(data, list):
        return [{columns[0]: value} for value in data], "columnar"
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ApiError(400, "bad_request", "'inputs' must map each input name to a list")
    lengths = {len(v) for v in data.values()}
    if len(lengths) != 1:
        raise ApiError(400, "bad_request", "every input in 'inputs' must have the same batch size")
    count = lengths.pop()
    return [{name: values[i] for name, values in data.items()} for i in range(count)], "columnar"


async def _predict(request: Request, name: str, version: str | None) -> Response:
    try:
        served = serving_model(request, name, version)
        admit(request, served)
        rows, layout = _rows(await read_json(request), served)
        valid = served.schema.validate_rows(rows, settings_of(request).max_rows)
        labels, proba = await run_model(request, served, valid)
        request.app.state.metrics.rows.labels(served.name, served.version).inc(len(valid))
        if layout == "row":
            return json_response(
                {
                    "predictions": [
                        {"label": lab, "probabilities": p}
                        for lab, p in zip(labels.tolist(), proba.tolist(), strict=True)
                    ]
                }
            )
        return json_response(
            {"outputs": {"label": labels.tolist(), "probabilities": proba.tolist()}}
        )
    except ApiError as error:
        request.state.error_code = error.code
        if error.status == 404:
            return json_response({"error": servable_not_found(name, version)}, 404)
        return plain_error(error)


def _split(target: str, action: str = "predict") -> str:
    suffix = f":{action}"
    if not target.endswith(suffix):
        raise not_found(f"method {target!r}", [f"{{name}}{suffix}"])
    return target[: -len(suffix)]


async def predict_latest(request: Request) -> Response:
    return await _predict(request, _split(request.path_params["target"]), None)


async def predict_version(request: Request) -> Response:
    params = request.path_params
    return await _predict(request, params["name"], _split(params["target"]))


ENDPOINTS = (
    Endpoint(
        route="/v1/models/{target}",
        handler=predict_latest,
        name="tf_predict",
        summary="TF Serving predict: POST /v1/models/{name}:predict",
        tag="tf serving protocol",
        docs_path="/v1/models/{name}:predict",
        per="model",
        operation=openapi_operations.tf_predict,
    ),
    Endpoint(
        route="/v1/models/{name}/versions/{target}",
        handler=predict_version,
        name="tf_predict_version",
        summary="TF Serving predict, pinned: POST /v1/models/{name}/versions/{v}:predict",
        tag="tf serving protocol",
        docs_path="/v1/models/{name}/versions/{version}:predict",
        per="version",
        operation=openapi_operations.tf_predict,
        description="A bare integer version means the highest loaded version with that major.",
    ),
)
