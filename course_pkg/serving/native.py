"""The native API: health, model listing, and prediction from JSON, CSV or an image.

The two prediction routes are ``ENDPOINTS`` (``endpoints.Endpoint``: one declaration gives
the served route and its OpenAPI operations); the rest are FastAPI routes on ``router``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from course_pkg.serving import openapi_operations
from course_pkg.serving.endpoints import Endpoint
from course_pkg.serving.errors import ApiError, invalid_input, unsupported_media_type
from course_pkg.serving.http import (
    admit,
    json_response,
    media_type,
    read_json,
    registry_of,
    request_id,
    run_model,
    serving_model,
    settings_of,
    spool_body,
)
from course_pkg.serving.payloads import csv_chunks, image_features, stream_csv, validate_csv
from course_pkg.serving.registry import ServedModel

router = APIRouter()
ACCEPTED = [
    "application/json",
    "text/csv",
    "multipart/form-data (file=…)",
    "image/png",
    "image/jpeg",
]


@router.get("/health/live", tags=["health"], summary="The process is up")
async def live() -> Response:
    return json_response({"status": "alive"})


@router.get("/health/ready", tags=["health"], summary="Every model is loaded and warmed")
async def ready(request: Request) -> Response:
    registry = request.app.state.registry
    if not registry.ready:
        state = "failed" if registry.error else "loading"
        raise ApiError(
            503,
            "not_ready",
            f"models {state}" + (f": {registry.error}" if registry.error else ""),
            headers={"retry-after": "1"},
        )
    body: dict[str, Any] = {
        "status": "ready",
        "models": [f"{m.name}:{m.version}" for m in registry.all()],
    }
    link = request.app.state.redis
    if link is not None:  # shared state: reported, never a reason to stop serving
        body["shared_state"] = {
            **link.status(),
            "rate_limit_on_redis_down": request.app.state.settings.rate_limit_on_redis_down,
        }
    return json_response(body)


@router.get("/v1/models", tags=["models"], summary="Every loaded model and version")
async def list_models(request: Request) -> Response:
    registry = registry_of(request)
    return json_response({"models": [m.info() for m in registry.all()]})


def _tf_status(versions: list[str]) -> list[dict[str, Any]]:
    return [
        {"version": v, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        for v in versions
    ]


@router.get(
    "/v1/models/{name}",
    tags=["models"],
    summary="A model: versions, schemas, sha256 (also TF Serving's model status)",
)
async def describe_model(request: Request, name: str) -> Response:
    registry = registry_of(request)
    served = registry.get(name)
    versions = registry.versions(name)
    aliases = dict(registry.routes.get(name).aliases)
    return json_response(
        {
            **served.info(),
            "versions": versions,
            "aliases": aliases,
            "model_version_status": _tf_status(versions),
        }
    )


@router.get("/v1/models/{name}/versions/{version}", tags=["models"], summary="One version")
async def describe_version(request: Request, name: str, version: str) -> Response:
    served = registry_of(request).get(name, version)
    return json_response({**served.info(), "model_version_status": _tf_status([served.version])})


def prediction_records(
    served: ServedModel, labels: np.ndarray, proba: np.ndarray
) -> list[dict[str, Any]]:
    classes = [str(c) for c in (served.classes or range(proba.shape[1]))]
    return [
        {"label": label_value, "probabilities": dict(zip(classes, row, strict=True))}
        for label_value, row in zip(labels.tolist(), proba.tolist(), strict=True)
    ]


def _answer(
    request: Request, served: ServedModel, labels: np.ndarray, proba: np.ndarray
) -> Response:
    return json_response(
        {
            "model": served.name,
            "version": served.version,
            "request_id": request_id(request),
            "predictions": prediction_records(served, labels, proba),
        }
    )


async def _predict_rows(request: Request, served: ServedModel, rows: Any) -> Response:
    settings = settings_of(request)
    valid = served.schema.validate_rows(rows, settings.max_rows)
    labels, proba = await run_model(request, served, valid)
    request.app.state.metrics.rows.labels(served.name, served.version).inc(len(valid))
    return _answer(request, served, labels, proba)


async def _predict_csv(request: Request, served: ServedModel, source: Any) -> Response:
    settings = settings_of(request)
    try:
        rows = await run_in_threadpool(validate_csv, source, served, settings.csv_chunk_rows)
    except BaseException:
        source.close()
        raise
    request.app.state.metrics.rows.labels(served.name, served.version).inc(rows)
    accept = request.headers.get("accept", "")
    if "application/json" in accept and "text/csv" not in accept:
        if rows > settings.max_rows:
            source.close()
            raise ApiError(
                413,
                "too_many_rows",
                f"{rows:,} rows is too many for a JSON answer (limit {settings.max_rows:,}); "
                "ask for text/csv, which streams",
            )
        import pandas as pd

        try:
            frame = pd.concat(list(csv_chunks(source, served, settings.csv_chunk_rows)))
        finally:
            source.close()
        labels, proba = await run_in_threadpool(
            served.predictor.predict_both, frame, validate=False
        )
        return _answer(request, served, labels, proba)
    return StreamingResponse(
        stream_csv(source, served, settings.csv_chunk_rows),
        media_type="text/csv",
    )


async def _predict_upload(request: Request, served: ServedModel) -> Response:
    import tempfile

    form = await request.form(max_files=1, max_fields=5)
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise invalid_input(
                [
                    {
                        "field": "file",
                        "row": None,
                        "message": "send the data as a form field named 'file'",
                    }
                ]
            )
        if served.kind == "image":
            data = await upload.read()
            if len(data) > settings_of(request).max_body_bytes:
                raise ApiError(413, "body_too_large", "images are limited to max_body_bytes")
            return await _predict_image(request, served, data)
        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
        while chunk := await upload.read(1024 * 1024):
            spool.write(chunk)
    finally:
        await form.close()
    return await _predict_csv(request, served, spool)


async def _predict_image(request: Request, served: ServedModel, data: bytes) -> Response:
    features = image_features(data, served)
    labels, proba = served.predictor.predict_tensor(features)
    request.app.state.metrics.rows.labels(served.name, served.version).inc()
    return _answer(request, served, labels, proba)


async def predict(request: Request, served: ServedModel) -> Response:
    admit(request, served)
    kind = media_type(request)
    if kind == "application/json":
        body = await read_json(request)
        if isinstance(body, dict) and "records" in body and len(body) == 1:
            return await _predict_rows(request, served, body["records"])
        raise invalid_input(
            [{"field": "(body)", "row": None, "message": 'expected {"records": [{...}, ...]}'}]
        )
    if kind in ("text/csv", "application/csv"):
        if served.kind == "image":
            raise unsupported_media_type(kind, ["application/json", "image/png", "image/jpeg"])
        return await _predict_csv(request, served, await spool_body(request))
    if kind == "multipart/form-data":
        return await _predict_upload(request, served)
    if kind in {"image/png", "image/jpeg"}:
        return await _predict_image(request, served, await request.body())
    raise unsupported_media_type(kind or None, ACCEPTED)


async def predict_latest(request: Request) -> Response:
    return await predict(request, serving_model(request, request.path_params["name"]))


async def predict_version(request: Request) -> Response:
    params = request.path_params
    return await predict(request, serving_model(request, params["name"], params["version"]))


ENDPOINTS = (
    Endpoint(
        route="/v1/models/{name}/predict",
        handler=predict_latest,
        name="predict",
        summary="Predict with the version the routing picks (stable, or the A/B split)",
        tag="predict",
        docs_path="/v1/models/{name}/predict",
        per="model",
        operation=openapi_operations.native_predict,
        description="JSON records, CSV (streamed), a multipart file or an image. The body is "
        "documented with the schema of the version the routing serves (its stable alias).",
    ),
    Endpoint(
        route="/v1/models/{name}/versions/{version}/predict",
        handler=predict_version,
        name="predict_version",
        summary="Predict with one pinned version (an alias works too: canary, latest)",
        tag="predict",
        docs_path="/v1/models/{name}/versions/{version}/predict",
        per="version",
        operation=openapi_operations.native_predict,
    ),
)
