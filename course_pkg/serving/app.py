"""``create_app``: the reference model server as a FastAPI application.

    app = create_app(["build/churn"], ServerSettings())      # or a ready ModelRegistry
    uvicorn.run(app, host="127.0.0.1", port=8000)             # course-pkg serve does this

Models load in the lifespan through the verifying loader (hashes, signature when a key is
configured) and are warmed with one prediction; ``/health/ready`` answers 503 until then
(``background_load``), ``/health/live`` answers at once. A package that fails to load stops
the server from ever becoming ready and the error is logged and shown by /health/ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from course_pkg.errors import ErrorDetail
from course_pkg.serving import admin, endpoints, jobs, kserve, mlflow_protocol, native, tfserving
from course_pkg.serving.batching import MicroBatcher
from course_pkg.serving.errors import ApiError, error_body
from course_pkg.serving.http import BodyLimitMiddleware, json_response, request_id
from course_pkg.serving.limits import PredictionCache, RateLimiter
from course_pkg.serving.observability import AccessLog, Metrics, ObservabilityMiddleware
from course_pkg.serving.registry import ModelRegistry
from course_pkg.serving.settings import ServerSettings
from course_pkg.version import __version__

LOG = logging.getLogger("course_pkg.serving")

DESCRIPTION = """
The course's reference model server. Every model is an ONNX package written by
`course-pkg train` / `course-pkg export-onnx`, verified before it is served.

Protocols: the native API (`/v1/models/{name}/predict`: JSON records, CSV, images),
MLflow scoring (`/invocations`), TF Serving REST (`/v1/models/{name}:predict`) and
KServe V2 (`/v2/models/{name}/infer`). Errors share one JSON shape on the native API and
follow each protocol's own shape elsewhere. Metrics at `/metrics` (Prometheus).

Versions: unversioned routes follow the model's routing (the `stable` alias, or a weighted
A/B split, sticky per `X-Client-Id`); `/versions/{version}` pins a version or alias. Every
answer names its version in `X-Model-Version`. The admin API (`/admin`, off unless
`COURSE_SERVE_ADMIN_TOKEN` is set) loads versions, moves aliases, splits and rolls back.
"""


def _state(
    app: FastAPI, registry: ModelRegistry, metrics: Metrics, settings: ServerSettings
) -> None:
    """The rate limiter, the prediction cache and the routing sync: in this process, or in
    Redis (``shared``, ``routing_sync``) when ``redis_url`` is set, shared by every worker."""
    app.state.redis = app.state.routing_sync = None
    app.state.limiter = RateLimiter(settings.rate_limits, settings.rate_limit_burst)
    app.state.cache = (
        PredictionCache(settings.cache_size, settings.cache_ttl_s) if settings.cache_size else None
    )
    if settings.redis_url is None:
        return
    from course_pkg.serving.routing_sync import RedisRoutingStore, RoutingSync
    from course_pkg.serving.shared import RedisLink, RedisPredictionCache, RedisRateLimiter

    link = app.state.redis = RedisLink(settings.redis_url, settings.redis_prefix)
    app.state.limiter = RedisRateLimiter(
        settings.rate_limits,
        settings.rate_limit_burst,
        link,
        on_redis_down=settings.rate_limit_on_redis_down,
    )
    if settings.cache_size:
        app.state.cache = RedisPredictionCache(link, settings.cache_ttl_s)
    app.state.routing_sync = RoutingSync(
        registry, RedisRoutingStore(link), metrics, settings.routing_poll_s
    )


def create_app(
    source: ModelRegistry | str | Path | Sequence[str | Path],
    settings: ServerSettings | None = None,
) -> FastAPI:
    settings = settings or ServerSettings()
    if isinstance(source, ModelRegistry):
        registry = source
    else:
        dirs = [source] if isinstance(source, (str, Path)) else list(source)
        public_key = None
        if settings.public_key is not None:
            from course_pkg.artifacts.signing import load_public_key

            public_key = load_public_key(settings.public_key)
        registry = ModelRegistry(
            dirs, public_key=public_key, require_signature=settings.require_signature
        )
    metrics = Metrics()

    async def load() -> None:
        try:
            await asyncio.to_thread(registry.load_all, settings.routing)
        except Exception:
            LOG.exception("loading models failed; the server will not become ready")
            return
        for served in registry.all():
            metrics.model_info.labels(served.name, served.version, served.sha256).set(1)
        for name in registry.names():
            admin.publish(registry, metrics, name)
        if app.state.routing_sync is not None:  # adopt the shared routing before serving
            await asyncio.to_thread(app.state.routing_sync.poll_once)
            app.state.routing_sync.start()
        LOG.info("ready: %s", ", ".join(f"{m.name}:{m.version}" for m in registry.all()))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        if not registry.ready and registry.model_dirs:
            if settings.background_load:
                task = asyncio.create_task(load())
            else:
                await load()
        elif registry.ready and app.state.routing_sync is not None:  # a registry given ready
            await asyncio.to_thread(app.state.routing_sync.poll_once)
            app.state.routing_sync.start()
        yield
        if task is not None and not task.done():
            task.cancel()
        if app.state.batcher is not None:
            app.state.batcher.close()
        if app.state.access_log is not None:
            app.state.access_log.close()
        if app.state.routing_sync is not None:
            app.state.routing_sync.stop()
        if app.state.redis is not None:
            app.state.redis.close()

    app = FastAPI(
        title="course-pkg model server",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's built-in OpenTelemetry hooks check the global providers on every request;
        # this server exports Prometheus metrics and JSON logs itself, so they are off.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.registry = registry
    app.state.access_log = AccessLog() if settings.access_log else None
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.jobs = jobs.job_queue(settings.redis_url) if settings.redis_url else None
    app.state.batcher = (
        MicroBatcher(settings.batch_max_rows, settings.batch_max_wait_ms / 1000)
        if settings.batch_max_rows
        else None
    )
    _state(app, registry, metrics, settings)

    app.include_router(mlflow_protocol.router)
    app.include_router(native.router)
    app.include_router(jobs.router)
    app.include_router(kserve.router)
    app.include_router(admin.router)
    # Every protocol's prediction routes, one declaration each (served and documented from
    # it), matched before the FastAPI routes above: the hot path. They take only POST, so the
    # GET routes they overlap (/v1/models/{name} and TF Serving's /v1/models/{target}) still
    # answer.
    endpoints.install(
        app,
        [*mlflow_protocol.ENDPOINTS, *native.ENDPOINTS, *tfserving.ENDPOINTS, *kserve.ENDPOINTS],
    )

    @app.get("/metrics", tags=["monitoring"], summary="Prometheus metrics")
    async def metrics_endpoint() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> Response:
        request.state.error_code = error.code
        return json_response(error_body(error, request_id(request)), error.status, error.headers)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, error: RequestValidationError) -> Response:
        details: list[ErrorDetail] = [
            {"field": ".".join(str(p) for p in e["loc"]), "row": None, "message": e["msg"]}
            for e in error.errors()
        ]
        return await api_error(
            request, ApiError(422, "invalid_request", "invalid request", details)
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        message = str(error.detail)
        if error.status_code == 404:
            message = f"no route {request.method} {request.url.path}; see /docs"
        return await api_error(request, ApiError(error.status_code, code, message))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        LOG.exception("unhandled error (request %s)", request_id(request))
        return await api_error(
            request,
            ApiError(500, "internal_error", "internal error; the request id is in the logs"),
        )

    # Outermost first: observability sees everything, including 413s from the body limit.
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    app.add_middleware(
        ObservabilityMiddleware,
        metrics=metrics,
        access_log=app.state.access_log,
        served_by=settings.served_by_header,
    )
    return app
