"""Small HTTP helpers shared by every protocol: body limits, JSON in and out, labels."""

from __future__ import annotations

import json
import tempfile
from functools import partial
from typing import IO, Any

import orjson
from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from course_pkg.serving.errors import ApiError, BodyTooLarge, with_details
from course_pkg.serving.registry import ModelRegistry, ServedModel
from course_pkg.serving.settings import ServerSettings

LARGE_BODY_TYPES = ("text/csv", "application/csv", "multipart/form-data")


def media_type(request: Request) -> str:
    return (request.headers.get("content-type") or "").split(";")[0].strip().lower()


class BodyLimitMiddleware:
    """413 for bodies over the limit: at once from Content-Length, or while streaming.

    CSV and multipart uploads and job submissions get ``max_csv_bytes``; everything else
    ``max_body_bytes``.
    """

    def __init__(self, app: Any, settings: ServerSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        large = content_type.startswith(LARGE_BODY_TYPES) or scope["path"] == "/v1/jobs"
        limit = self.settings.max_csv_bytes if large else self.settings.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            error = BodyTooLarge(limit)
            scope.setdefault("state", {})["error_code"] = error.code
            from course_pkg.serving.errors import error_body

            state = scope.get("state", {})
            response = Response(
                orjson.dumps(error_body(error, state.get("request_id"))),
                status_code=413,
                media_type="application/json",
                headers={"connection": "close"},
            )
            await response(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal seen
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)


def plain_error(error: ApiError) -> Response:
    """``{"error": "message: field (row N): …"}``, 422 as 400: TF Serving's and KServe's shape."""
    status = 400 if error.status == 422 else error.status
    return json_response({"error": with_details(error)}, status, error.headers)


def json_response(
    content: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def parse_json(body: bytes) -> Any:
    """orjson (fast); on failure, the standard library, which also reads the NaN/Infinity
    literals many clients emit — so those reach validation and get a 422 naming the field,
    instead of a bare "invalid JSON"."""
    if not body:
        raise ApiError(400, "empty_body", "the request body is empty; send JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise ApiError(400, "invalid_json", f"the body is not valid JSON: {error}") from None


async def read_json(request: Request) -> Any:
    return parse_json(await request.body())


async def spool_body(request: Request) -> IO[bytes]:
    """The raw body in a temporary file (memory up to 8 MB, then disk), rewound."""
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
    try:
        async for chunk in request.stream():
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def registry_of(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    if not registry.ready:
        detail = f" ({registry.error})" if registry.error else ""
        raise ApiError(
            503, "not_ready", f"models are still loading{detail}", headers={"retry-after": "1"}
        )
    return registry


def serving_model(
    request: Request, name: str | None = None, version: str | None = None
) -> ServedModel:
    """The model a prediction request is served by: ``version`` (a version or alias) when the
    route pins one, else the routing's choice (``gateway``), sticky per ``X-Client-Id``.
    ``name`` None: the default model (MLflow's /invocations serves one)."""
    registry = registry_of(request)
    if name is None:
        name = registry.default_name()
    if version is not None:
        return registry.get(name, version)
    served, target = registry.route(name, request.headers.get("x-client-id"))
    request.scope.setdefault("state", {})["alias"] = target  # = request.state.alias, cheaper
    return served


def settings_of(request: Request) -> ServerSettings:
    settings: ServerSettings = request.app.state.settings
    return settings


def admit(request: Request, served: ServedModel) -> None:
    """Name the model and version for metrics and logs, then apply the client's rate limit
    (429 ``ApiError`` when it is spent)."""
    from course_pkg.serving.limits import client_id

    request.state.model = served.name
    request.state.version = served.version
    limiter = request.app.state.limiter
    if limiter.limits:  # off by default: no per-request cost then
        limiter.check(client_id(request.headers, request.client), served.name)


def predict_rows(state: Any, served: ServedModel, rows: list[dict[str, Any]]) -> Any:
    """``served.predict_rows`` through the app's prediction cache (when configured);
    ``state`` is ``app.state``. Safe on any thread."""
    cache = state.cache
    if cache is None:
        return served.predict_rows(rows)
    hits_before, misses_before = cache.hits, cache.misses
    result = served.predict_rows(rows, cache)
    state.metrics.cache.labels(served.name, "hit").inc(cache.hits - hits_before)
    state.metrics.cache.labels(served.name, "miss").inc(cache.misses - misses_before)
    return result


def _predict_batch(state: Any, served: ServedModel, rows: list[dict[str, Any]]) -> Any:
    state.metrics.batch_rows.labels(served.name, served.version).observe(len(rows))
    return predict_rows(state, served, rows)


async def run_model(request: Request, served: ServedModel, rows: list[dict[str, Any]]) -> Any:
    """Validated rows → ``(labels, probabilities)``, however this server predicts them.

    With micro-batching on, requests smaller than a batch join the model's next batch. Else,
    batches of ``threadpool_rows`` or more run on a worker thread (the event loop keeps
    serving), and small ones run inline: a thread hop costs more than a small model call.
    """
    state = request.app.state
    batcher = state.batcher
    if batcher is not None and len(rows) < batcher.max_rows:
        return await batcher.predict(
            (served.name, served.version), rows, partial(_predict_batch, state, served)
        )
    if len(rows) >= state.settings.threadpool_rows:
        return await run_in_threadpool(predict_rows, state, served, rows)
    return predict_rows(state, served, rows)


def request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)
