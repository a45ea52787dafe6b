"""Run the server under uvicorn (``course-pkg serve``), with one or several worker processes.

Several workers need an import string, so the model directories travel in the environment
(``COURSE_SERVE_MODELS``, ``os.pathsep``-separated) to ``app_from_env``. With more than one
worker, Prometheus' multiprocess mode is switched on (a temporary ``PROMETHEUS_MULTIPROC_DIR``
removed at exit) so /metrics adds up every worker. SIGTERM/SIGINT: uvicorn stops accepting
connections, lets in-flight requests finish (up to ``graceful_shutdown_s``), then exits 0.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from course_pkg.serving.settings import ServerSettings

MODELS_ENV = "COURSE_SERVE_MODELS"


def app_from_env() -> Any:
    from course_pkg.serving.app import create_app

    dirs = [d for d in os.environ.get(MODELS_ENV, "").split(os.pathsep) if d]
    if not dirs:
        raise RuntimeError(f"{MODELS_ENV} lists no model directory")
    return create_app(dirs, ServerSettings())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message (and the traceback, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        import orjson

        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def log_config(level: str, fmt: str = "text") -> dict[str, Any]:
    """Server messages as text (or JSON lines), our access log as bare JSON lines; stdout."""
    plain: dict[str, Any] = (
        {"()": JsonFormatter}
        if fmt == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": plain, "json": {"format": "%(message)s"}},
        "handlers": {
            "plain": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stdout",
            },
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["plain"], "level": level.upper(), "propagate": False},
            "course_pkg.serving": {
                "handlers": ["plain"],
                "level": level.upper(),
                "propagate": False,
            },
            "course_pkg.access": {"handlers": ["json"], "level": "INFO", "propagate": False},
        },
    }


def serve(model_dirs: Sequence[str | Path], settings: ServerSettings | None = None) -> None:
    """Blocking: serve ``model_dirs`` until SIGTERM/SIGINT."""
    import uvicorn

    settings = settings or ServerSettings()
    dirs = [str(Path(d).resolve()) for d in model_dirs]
    missing = [d for d in dirs if not Path(d).is_dir()]
    if missing:
        raise FileNotFoundError(f"not a model directory: {', '.join(missing)}")
    if settings.host not in {"127.0.0.1", "localhost", "::1"}:
        print(
            f"warning: listening on {settings.host}, reachable beyond this machine",
            file=sys.stderr,
        )
    # uvicorn handles SIGTERM/SIGINT (stop accepting, finish in-flight requests), then
    # re-raises the signal with the handlers it found installed. These no-op handlers make
    # that re-raise a no-op, so a graceful stop exits 0 (Docker: "exited cleanly") instead
    # of dying by the signal (exit 143).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": log_config(settings.log_level, settings.log_format),
        "access_log": False,  # ours is richer (request id, model, version)
        "timeout_graceful_shutdown": settings.graceful_shutdown_s,
        "server_header": False,
    }
    if settings.workers == 1:
        from course_pkg.serving.app import create_app

        uvicorn.run(create_app(dirs, settings), **common)
        return
    os.environ[MODELS_ENV] = os.pathsep.join(dirs)
    for key, value in settings.model_dump(mode="json", exclude={"workers", "admin_token"}).items():
        if value is not None:  # JSON, as pydantic-settings reads dicts (rate_limits, routing)
            text = value if isinstance(value, str) else json.dumps(value)
            os.environ[f"COURSE_SERVE_{key.upper()}"] = text
    if settings.admin_token is not None:  # only with Redis (settings refuse it otherwise)
        os.environ["COURSE_SERVE_ADMIN_TOKEN"] = settings.admin_token.get_secret_value()
    # Workers share one listening socket and the kernel hands connections to any of them; a
    # worker still loading in the background would answer 503 while its siblings are ready.
    # So each worker loads before it starts accepting (its lifespan blocks), and "ready" from
    # any worker means ready everywhere that accepts.
    os.environ["COURSE_SERVE_BACKGROUND_LOAD"] = "false"
    metrics_dir = tempfile.mkdtemp(prefix="course-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "course_pkg.serving.runner:app_from_env",
            factory=True,
            workers=settings.workers,
            **common,
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    logging.shutdown()
