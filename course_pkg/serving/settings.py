"""Server settings: constructor arguments, or environment variables ``COURSE_SERVE_*``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServerSettings(BaseSettings):
    """Everything an operator may tune. Defaults are safe for a laptop.

    Environment variables override defaults (``COURSE_SERVE_PORT=9000``), which is how the
    container image is configured (issue #7).
    """

    model_config = SettingsConfigDict(env_prefix="COURSE_SERVE_", extra="ignore")

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"  # json: every line on stdout is one object
    access_log: bool = True  # one JSON line per request on the "course_pkg.access" logger
    max_body_bytes: Annotated[int, Field(ge=1)] = 1_000_000  # JSON and image bodies
    max_csv_bytes: Annotated[int, Field(ge=1)] = 100_000_000  # CSV bodies and multipart uploads
    max_rows: Annotated[int, Field(ge=1)] = 10_000  # rows per JSON request (CSV streams, no limit)
    csv_chunk_rows: Annotated[int, Field(ge=1)] = 20_000
    threadpool_rows: Annotated[int, Field(ge=1)] = 256  # batches this big run off the event loop
    background_load: bool = True  # serve /health/live while models load; ready when warmed
    public_key: Path | None = None  # verify package signatures with this key
    require_signature: bool = False
    graceful_shutdown_s: Annotated[float, Field(ge=0)] = 30.0
    # per-model requests/s per client ("*": every model); JSON in the environment:
    # COURSE_SERVE_RATE_LIMITS='{"churn": 50}'. Empty: no limit.
    rate_limits: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    rate_limit_burst: Annotated[int, Field(ge=1)] = 20
    cache_size: Annotated[int, Field(ge=0)] = 0  # rows; 0 = no prediction cache
    cache_ttl_s: Annotated[float, Field(gt=0)] = 300.0
    # micro-batching (course_pkg.serving.batching): requests smaller than batch_max_rows are
    # predicted together — those that queue while the model is busy, plus, when it is idle,
    # those arriving within batch_max_wait_ms (0: the same event-loop turn). 0 rows = off.
    batch_max_rows: Annotated[int, Field(ge=0)] = 0
    batch_max_wait_ms: Annotated[float, Field(ge=0, le=1000)] = 0.0
    # asynchronous jobs (course_pkg.serving.jobs): off unless a Redis URL is given
    redis_url: str | None = None  # e.g. redis://127.0.0.1:6379/0
    job_max_rows: Annotated[int, Field(ge=1)] = 1_000_000
    job_timeout_s: Annotated[int, Field(ge=1)] = 600  # a running job is stopped after this
    job_result_ttl_s: Annotated[int, Field(ge=1)] = 86_400  # results kept this long

    # versions and traffic (course_pkg.serving.gateway) at start, per model:
    # COURSE_SERVE_ROUTING='{"churn": {"aliases": {"stable": "1.0.0", "canary": "1.1.0"},
    #                                  "weights": {"stable": 90, "canary": 10}}}'
    routing: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    # the admin API (/admin/...: load versions, move aliases, split traffic, roll back) is
    # off unless a token is set; clients send it as "Authorization: Bearer <token>"
    admin_token: SecretStr | None = None

    # shared state (course_pkg.serving.shared, routing_sync): with redis_url, rate limits, the
    # prediction cache and the routing table live in Redis under this prefix
    redis_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] = "course-serve"
    rate_limit_on_redis_down: Literal["open", "closed"] = "open"  # open: let requests through
    routing_poll_s: Annotated[float, Field(ge=0.05, le=1.0)] = (
        0.25  # every worker, in the background
    )
    served_by_header: bool = False  # X-Served-By: <pid> on every answer (which worker answered)

    @model_validator(mode="before")
    @classmethod
    def _platform_port(cls, data: Any) -> Any:
        """``PORT`` (Cloud Run, Hugging Face Spaces, Heroku set it) when ``COURSE_SERVE_PORT``
        and ``--port`` are not given (or empty): those win."""
        port = os.environ.get("PORT")
        if isinstance(data, dict) and data.get("port") in (None, "") and port:
            return {**data, "port": port}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ServerSettings:
        if self.batch_max_rows == 1:
            raise ValueError("batch_max_rows 1 batches nothing: use 0 (off) or at least 2")
        if self.admin_token is not None and self.workers > 1 and self.redis_url is None:
            raise ValueError(
                "the admin API changes one process's routing, and workers > 1 runs several: "
                "set COURSE_SERVE_REDIS_URL (the routing table is then shared through Redis), "
                "run one worker per container, or set the routing at start with "
                "COURSE_SERVE_ROUTING"
            )
        if self.rate_limits and self.workers > 1 and self.redis_url is None:
            raise ValueError(
                f"rate_limits with workers={self.workers} and no Redis would allow "
                f"{self.workers}x each limit (every worker process keeps its own buckets): "
                "set COURSE_SERVE_REDIS_URL so the workers share them, or run one worker"
            )
        if self.admin_token is not None and len(self.admin_token.get_secret_value()) < 16:
            raise ValueError("admin_token is too short: use at least 16 random characters")
        for name, entry in self.routing.items():
            unknown = set(entry) - {"aliases", "weights"}
            if unknown:
                raise ValueError(f"routing[{name!r}]: unknown keys {sorted(unknown)}")
        return self
