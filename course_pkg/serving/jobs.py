"""Asynchronous prediction jobs: ``POST /v1/jobs`` → 202, a worker predicts, ``GET`` the result.

For requests too big to answer while the client waits (a million rows), the server validates
the rows, puts a job on a Redis queue and answers ``202 Accepted`` with the job's id at once;
a separate worker process (``course-pkg worker``) takes jobs off the queue and stores the
predictions in Redis, where ``GET /v1/jobs/{id}`` finds them.

Why Redis + RQ: Redis is one Debian package (``apt-get install redis-server``) and one small
process; RQ is a few hundred lines over it with the parts a job queue needs (statuses,
timeouts, result expiry, failed-job registry, warm shutdown). Celery would bring a broker
abstraction, a result backend and its own worker model for the same four operations.

Security choices:
- Jobs are serialised as **JSON**, not RQ's default pickle: whoever can write to Redis must
  not be able to run code in the worker (notebook 01's lesson).
- A job names a model by name, version and sha256, never by path: the worker loads the same
  packages as the server at start (verified, like the server's) and refuses a job for a model
  it does not serve with that exact hash.
- Rows are validated by the server before queueing (a bad row is a 422 now, not a failed job
  later) and again by the worker (what comes out of Redis is input too).
- Redis binds to 127.0.0.1 (``course_pkg.serving.process.RedisServer``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from course_pkg.serving.errors import ApiError, invalid_input
from course_pkg.serving.http import (
    admit,
    json_response,
    read_json,
    serving_model,
    settings_of,
)
from course_pkg.serving.registry import ModelRegistry

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rq import Queue
    from rq.job import Job

LOG = logging.getLogger("course_pkg.jobs")
QUEUE_NAME = "course-predictions"
router = APIRouter(tags=["jobs"])
_worker_registry: ModelRegistry | None = None  # the packages this worker process serves


def job_queue(redis_url: str) -> Queue:
    """The prediction queue on ``redis_url`` (JSON-serialised jobs)."""
    from redis import Redis
    from rq import Queue
    from rq.serializers import JSONSerializer

    connection = Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=10)
    return Queue(QUEUE_NAME, connection=connection, serializer=JSONSerializer)


def score_job(name: str, version: str, sha256: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The job a worker runs: predict ``rows`` with the named model version."""
    from course_pkg.serving.native import prediction_records

    if _worker_registry is None:
        raise RuntimeError("score_job runs in a worker started by course_pkg.serving.jobs.work")
    served = _worker_registry.get(name, version)
    if served.sha256 != sha256:
        raise RuntimeError(
            f"this worker serves {name} {version} with sha256 {served.sha256[:12]}…, the job "
            f"asks for {sha256[:12]}…: start the worker with the same packages as the server"
        )
    valid = served.schema.validate_rows(rows, max_rows=len(rows) or 1)
    labels, proba = served.predict_rows(valid)
    return {
        "model": served.name,
        "version": served.version,
        "predictions": prediction_records(served, labels, proba),
    }


def work(
    model_dirs: Sequence[str | Path],
    redis_url: str,
    *,
    burst: bool = False,
    public_key: Any = None,
    require_signature: bool = False,
) -> None:
    """Load and verify the packages, then take jobs until SIGTERM (or, with ``burst``, until
    the queue is empty). What ``course-pkg worker`` runs.

    RQ's ``SimpleWorker`` runs jobs in this process instead of forking one per job: the
    models stay loaded and warm between jobs. The cost: a job that crashes the interpreter
    takes the worker with it (run it under a supervisor, e.g. systemd ``Restart=always``).
    """
    global _worker_registry
    from rq import SimpleWorker

    registry = ModelRegistry(model_dirs, public_key=public_key, require_signature=require_signature)
    registry.load_all()
    _worker_registry = registry
    queue = job_queue(redis_url)
    LOG.info("worker ready: %s", ", ".join(f"{m.name}:{m.version}" for m in registry.all()))
    worker = SimpleWorker([queue], connection=queue.connection, serializer=queue.serializer)
    worker.work(burst=burst, logging_level="WARNING")


def _queue_of(request: Request) -> Queue:
    queue: Queue | None = request.app.state.jobs
    if queue is None:
        raise ApiError(
            404,
            "jobs_disabled",
            "this server has no job queue; start Redis and `course-pkg worker`, then restart "
            "the server with COURSE_SERVE_REDIS_URL=redis://127.0.0.1:6379/0",
        )
    return queue


async def _redis(call: Any, *args: Any) -> Any:
    """Run a blocking Redis call off the event loop; Redis down → 503, not 500."""
    from redis.exceptions import RedisError

    try:
        return await run_in_threadpool(call, *args)
    except RedisError as error:
        raise ApiError(
            503,
            "queue_unavailable",
            f"the job queue is unreachable ({type(error).__name__}); retry later",
            headers={"retry-after": "5"},
        ) from None


def _describe(job: Job) -> dict[str, Any]:
    from rq.job import JobStatus

    status = job.get_status(refresh=False)
    meta = job.meta
    answer: dict[str, Any] = {
        "id": job.id,
        "status": status.value if status is not None else "unknown",
        "model": meta.get("model"),
        "version": meta.get("version"),
        "rows": meta.get("rows"),
        "enqueued_at": _iso(job.enqueued_at),
        "started_at": _iso(job.started_at),
        "ended_at": _iso(job.ended_at),
    }
    if status == JobStatus.FINISHED:
        answer["result"] = job.return_value()
    elif status == JobStatus.FAILED:
        result = job.latest_result()
        error = (result.exc_string or "") if result is not None else ""
        last = [line for line in error.strip().splitlines() if line.strip()]
        answer["error"] = last[-1] if last else "the job failed"
    return answer


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


@router.post(
    "/v1/jobs",
    status_code=202,
    summary="Queue a large prediction; answers 202 with the job id at once",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "example": {"model": "churn", "version": None, "records": [{"...": "..."}]}
                }
            },
        }
    },
)
async def submit(request: Request) -> Response:
    queue = _queue_of(request)
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        raise invalid_input(
            [
                {
                    "field": "(body)",
                    "row": None,
                    "message": 'expected {"model": "name", "version": "1.0.0" (optional), '
                    '"records": [{...}, ...]}',
                }
            ]
        )
    version = body.get("version")
    served = serving_model(request, body["model"], None if version is None else str(version))
    admit(request, served)
    settings = settings_of(request)
    rows = await run_in_threadpool(
        served.schema.validate_rows, body.get("records"), settings.job_max_rows
    )
    job = await _redis(
        lambda: queue.enqueue(
            "course_pkg.serving.jobs.score_job",
            served.name,
            served.version,
            served.sha256,
            rows,
            job_timeout=settings.job_timeout_s,
            result_ttl=settings.job_result_ttl_s,
            failure_ttl=settings.job_result_ttl_s,
            meta={"model": served.name, "version": served.version, "rows": len(rows)},
        )
    )
    location = f"/v1/jobs/{job.id}"
    return json_response(
        {**_describe(job), "status_url": location}, 202, headers={"location": location}
    )


@router.get("/v1/jobs/{job_id}", summary="A job's status, and its predictions when finished")
async def status(request: Request, job_id: str) -> Response:
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    queue = _queue_of(request)
    try:
        job = await _redis(Job.fetch, job_id, queue.connection, queue.serializer)
    except NoSuchJobError:
        raise ApiError(
            404,
            "not_found",
            f"no job {job_id!r}: unknown, or its result expired "
            f"({settings_of(request).job_result_ttl_s} s after it ended)",
        ) from None
    return json_response(await _redis(_describe, job))
