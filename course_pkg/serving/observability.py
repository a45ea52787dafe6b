"""Request ids, JSON access logs and Prometheus metrics, as one pure-ASGI middleware.

Pure ASGI (not Starlette's ``BaseHTTPMiddleware``) because it wraps every request: it adds
no task or queue per request, and it sees the final status even for streamed responses.

Metrics (prometheus-client), labelled by route *template* (``/v1/models/{name}/predict``,
never the raw path, so label cardinality stays bounded):

- ``course_requests_total{route, method, status, model, version}``
- ``course_request_duration_seconds{route, model, version}`` (histogram, 0.5 ms … 10 s)
- ``course_errors_total{route, status, code}`` — every 4xx/5xx, by its machine code
- ``course_predicted_rows_total{model, version}``
- ``course_model_info{name, version, sha256}`` = 1 per loaded model
- ``course_traffic_percent{model, version}``: the routing's split (``gateway``)

With several uvicorn workers, ``PROMETHEUS_MULTIPROC_DIR`` makes ``/metrics`` aggregate all
worker processes (``course-pkg serve`` sets it up).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

ACCESS_LOG = logging.getLogger("course_pkg.access")
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "course_requests",
            "HTTP requests served",
            ["route", "method", "status", "model", "version"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "course_request_duration_seconds",
            "Request latency from first byte in to last byte out",
            ["route", "model", "version"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "course_errors",
            "Error responses by code",
            ["route", "status", "code"],
            registry=self.registry,
        )
        self.rows = Counter(
            "course_predicted_rows", "Rows predicted", ["model", "version"], registry=self.registry
        )
        self.cache = Counter(
            "course_prediction_cache",
            "Prediction cache lookups by result (hit, miss)",
            ["model", "result"],
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "course_microbatch_rows",
            "Rows per model call when micro-batching is on",
            ["model", "version"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=self.registry,
        )
        self.model_info = Gauge(
            "course_model_info",
            "1 for each loaded model version",
            ["name", "version", "sha256"],
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.traffic = Gauge(
            "course_traffic_percent",
            "Share of unversioned requests routed to each version (A/B split)",
            ["model", "version"],
            registry=self.registry,
            multiprocess_mode="max",
        )

        self._children: dict[tuple[str, ...], tuple[Any, Any]] = {}

    def observe(
        self, route: str, method: str, status: int, model: str, version: str, seconds: float
    ) -> None:
        """Count one request. Label children are cached: ``labels()`` costs microseconds."""
        key = (route, method, str(status), model, version)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status), model, version),
                self.latency.labels(route, model, version),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> bytes:
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


class AccessLog:
    """The JSON access log, written in batches off the request path.

    A request appends its line to a deque (thread-safe, ~0.1 µs); a daemon thread hands what
    accumulated to the ``course_pkg.access`` logger as one record every ``interval_s``, so the
    per-request cost of Python logging (a LogRecord, the handler's lock, a format and a write
    plus flush per line) becomes one write per batch. The lines are the same bytes as before,
    one JSON object per line (the access logger's format is the bare message). Up to
    ``interval_s`` of lines are lost if the process is killed (SIGKILL); a graceful stop
    flushes. ``max_lines`` bounds memory if stdout blocks: the oldest lines are dropped.
    """

    def __init__(self, interval_s: float = 0.2, max_lines: int = 100_000) -> None:
        import collections
        import threading

        self.interval_s = interval_s
        self._lines: collections.deque[str] = collections.deque(maxlen=max_lines)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def write(self, line: str) -> None:
        self._lines.append(line)
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        import threading

        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush()
        self.flush()

    def flush(self) -> None:
        """Log every line written so far (one record, lines joined by newlines)."""
        batch = []
        lines = self._lines
        while lines:
            try:
                batch.append(lines.popleft())
            except IndexError:  # emptied meanwhile
                break
        if batch:
            ACCESS_LOG.info("\n".join(batch))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class ObservabilityMiddleware:
    """X-Request-ID in and out (and X-Model-Version / X-Model-Alias on every answer a model
    gave), one JSON log line and metric update per request."""

    def __init__(
        self,
        app: Any,
        metrics: Metrics,
        access_log: AccessLog | None = None,
        served_by: bool = False,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        # X-Served-By: this worker's pid (COURSE_SERVE_SERVED_BY_HEADER), to see which worker
        # answered; off by default (a pid is nobody else's business)
        self.served_by = [(b"x-served-by", str(os.getpid()).encode())] if served_by else []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and len(incoming) <= 128 else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                headers += self.served_by
                if "version" in state:  # which version served it, whatever the protocol
                    headers.append((b"x-model-version", state["version"].encode("latin-1")))
                    if "alias" in state:  # the routing's choice (unversioned routes)
                        headers.append((b"x-model-alias", state["alias"].encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._record(scope, status, time.perf_counter() - started, request_id)

    def _record(self, scope: dict[str, Any], status: int, seconds: float, request_id: str) -> None:
        state = scope.get("state", {})
        route = state.get("route") or getattr(scope.get("route"), "path", None) or "(unmatched)"
        model, version = state.get("model", ""), state.get("version", "")
        method = scope.get("method", "")
        self.metrics.observe(route, method, status, model, version, seconds)
        if status >= 400:
            self.metrics.errors.labels(route, str(status), state.get("error_code", "")).inc()
        if self.access_log is not None and ACCESS_LOG.isEnabledFor(logging.INFO):
            self.access_log.write(
                orjson.dumps(
                    {
                        "ts": round(time.time(), 3),
                        "request_id": request_id,
                        "method": method,
                        "path": scope.get("path"),
                        "route": route,
                        "status": status,
                        "ms": round(seconds * 1000, 3),
                        "model": model or None,
                        "version": version or None,
                        "client": (scope.get("client") or ("", 0))[0],
                    }
                ).decode()
            )
