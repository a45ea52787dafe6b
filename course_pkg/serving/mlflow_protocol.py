"""MLflow's scoring protocol (``mlflow models serve``): ``/invocations``, ``/ping``, ``/version``.

Mirrors MLflow 3's scoring server (``mlflow/pyfunc/scoring_server``): JSON bodies with exactly
one of ``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs``, or a
``text/csv`` body; the answer is ``{"predictions": [...labels...]}`` — what a scikit-learn
classifier's pyfunc ``predict`` returns. Errors use MLflow's shape,
``{"error_code": "BAD_REQUEST", "message": ...}`` with status 400, and unsupported content
types get MLflow's 415 text/plain answer. MLflow serves one model; so does ``/invocations``
here: the first model the server loaded.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from course_pkg.serving import openapi_operations
from course_pkg.serving.endpoints import Endpoint
from course_pkg.serving.errors import ApiError, with_details
from course_pkg.serving.http import (
    admit,
    json_response,
    media_type,
    parse_json,
    run_model,
    serving_model,
    settings_of,
)
from course_pkg.serving.openapi_schemas import Components, Schema
from course_pkg.serving.payloads import csv_chunks, predict_frame, validate_csv
from course_pkg.serving.registry import ServedModel

router = APIRouter(tags=["mlflow protocol"])

MLFLOW_PROTOCOL_VERSION = "3.17.2"  # the MLflow release whose scoring server this mirrors
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
REQUIRED_FORMAT = (
    "The input must be a JSON dictionary with exactly one of the input fields "
    "{'dataframe_split', 'dataframe_records', 'instances', 'inputs'}"
)
_MLFLOW_CODES = {
    429: "REQUEST_LIMIT_EXCEEDED",
    404: "RESOURCE_DOES_NOT_EXIST",
    413: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
}


def mlflow_error(error: ApiError) -> Response:
    status = 400 if error.status in (400, 422) else error.status
    message = with_details(error, " | ")
    return json_response(
        {"error_code": _MLFLOW_CODES.get(status, "BAD_REQUEST"), "message": message},
        status,
        error.headers,
    )


def _bad(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def _records_from_json(body: Any, served: ServedModel) -> list[dict[str, Any]]:
    if isinstance(body, list):
        raise _bad(f"{REQUIRED_FORMAT}. Received a list.")
    if not isinstance(body, dict):
        raise _bad(f"{REQUIRED_FORMAT}. Received unexpected input type '{type(body).__name__}'.")
    keys = [k for k in FORMATS if k in body]
    if len(keys) != 1:
        raise _bad(f"{REQUIRED_FORMAT}. Received dictionary with input fields: {list(body)}.")
    key, data = keys[0], body[keys[0]]
    columns = served.schema.columns
    if key == "dataframe_split":
        if not isinstance(data, dict) or "columns" not in data or "data" not in data:
            raise _bad("dataframe_split needs 'columns' and 'data' (pandas orient='split')")
        names, rows = data["columns"], data["data"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _bad("dataframe_split: 'columns' must be a list of column names")
        if not isinstance(rows, list) or not all(
            isinstance(r, list) and len(r) == len(names) for r in rows
        ):
            raise _bad("dataframe_split: every row in 'data' must list one value per column")
        return [dict(zip(names, row, strict=True)) for row in rows]
    if key in ("dataframe_records", "instances") or (key == "inputs" and isinstance(data, list)):
        if not isinstance(data, list):
            raise _bad(f"{key} must be a list of records")
        if served.kind == "image" and data and not isinstance(data[0], dict):
            return [{columns[0]: row} for row in data]  # a list of pixel rows
        return data
    # inputs as columns: {"col": [v1, v2], ...}
    if not isinstance(data, dict):
        raise _bad("inputs must be a list of records or a dict of column → values")
    lengths = {len(v) if isinstance(v, list) else -1 for v in data.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise _bad("inputs: every column must be a list, all of the same length")
    count = lengths.pop()
    return [{name: values[i] for name, values in data.items()} for i in range(count)]


async def invocations(request: Request) -> Response:
    kind = media_type(request)
    if kind not in ("application/json", "text/csv", "application/csv"):
        return Response(
            "This predictor only supports the following content types: Types: "
            f"['text/csv', 'application/json']. Got '{request.headers.get('content-type')}'.",
            status_code=415,
            media_type="text/plain",
        )
    try:
        served = serving_model(request)
        admit(request, served)
        settings = settings_of(request)
        if kind in ("text/csv", "application/csv"):  # MLflow's docs say the latter
            from starlette.concurrency import run_in_threadpool

            from course_pkg.serving.http import spool_body

            source = await spool_body(request)
            try:
                await run_in_threadpool(validate_csv, source, served, settings.csv_chunk_rows)
                labels = []
                for chunk in csv_chunks(source, served, settings.csv_chunk_rows):
                    labels.extend(predict_frame(served, chunk)[0].tolist())
            finally:
                source.close()
        else:
            try:
                decoded = parse_json(await request.body())
            except ApiError as error:
                raise _bad(f"Ensure that input is a valid JSON formatted string. {error}") from None
            rows = served.schema.validate_rows(
                _records_from_json(decoded, served), settings.max_rows
            )
            labels = (await run_model(request, served, rows))[0].tolist()
        request.app.state.metrics.rows.labels(served.name, served.version).inc(len(labels))
        return json_response({"predictions": labels})
    except ApiError as error:
        request.state.error_code = error.code
        return mlflow_error(error)


def _operation(served: ServedModel, components: Components) -> Schema:
    return openapi_operations.mlflow_invocations(served, components, FORMATS)


ENDPOINTS = (
    Endpoint(
        route="/invocations",
        handler=invocations,
        name="mlflow_invocations",
        summary="MLflow scoring: predict with the default model",
        tag="mlflow protocol",
        docs_path="/invocations",
        per="default",
        operation=_operation,
        description="MLflow serves one model; so does /invocations: the first model loaded.",
    ),
)


@router.get("/ping", summary="MLflow health check (200 once the model is loaded)")
@router.get("/health", include_in_schema=False)
async def ping(request: Request) -> Response:
    ready = request.app.state.registry.ready
    return Response("\n", status_code=200 if ready else 503, media_type="application/json")


@router.get("/version", summary="The MLflow protocol version mirrored")
async def version() -> Response:
    return Response(MLFLOW_PROTOCOL_VERSION, media_type="application/json")
