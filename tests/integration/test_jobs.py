"""The job queue end to end: a real redis-server, a real `course-pkg worker`, a real server."""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from course_pkg.serving.process import RedisServer, ServerProcess, WorkerProcess
from course_pkg.training import train_churn


@pytest.fixture(scope="module")
def worker(redis: RedisServer, model_packages: dict[str, Path]) -> Iterator[WorkerProcess]:
    # the worker serves churn 1.0.0 only; the server also serves 1.1.0 (see the failure test)
    with WorkerProcess([model_packages["churn"]], redis.url) as running:
        yield running
    assert running.returncode == 0, running.output()  # warm shutdown on SIGTERM


@pytest.fixture(scope="module")
def server(
    redis: RedisServer, worker: WorkerProcess, model_packages: dict[str, Path]
) -> Iterator[ServerProcess]:
    packages = [model_packages["churn"], model_packages["churn_v2"]]
    with ServerProcess(packages, env={"COURSE_SERVE_REDIS_URL": redis.url}) as running:
        yield running
    assert running.returncode == 0, running.output()


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    rows = json.loads(train_churn().x_test.to_json(orient="records"))
    return list(rows) * 4  # 5,600 rows: a request worth queueing


def wait_for(server: ServerProcess, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(f"{server.url}/v1/jobs/{job_id}").json()
        if answer["status"] in ("finished", "failed", "stopped", "canceled"):
            return dict(answer)
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} still {answer['status']} after {timeout} s")


def test_submit_poll_and_get_the_same_predictions_as_a_direct_call(
    server: ServerProcess, records: list[dict[str, Any]]
) -> None:
    submitted = httpx.post(
        f"{server.url}/v1/jobs", json={"model": "churn", "version": "1.0.0", "records": records}
    )
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    assert job["status"] == "queued" and job["rows"] == len(records)
    assert submitted.headers["location"] == job["status_url"] == f"/v1/jobs/{job['id']}"
    done = wait_for(server, job["id"])
    assert done["status"] == "finished", done
    assert done["started_at"] and done["ended_at"]
    direct = httpx.post(
        f"{server.url}/v1/models/churn/versions/1.0.0/predict", json={"records": records[:1400]}
    ).json()["predictions"]
    queued = done["result"]["predictions"]
    assert len(queued) == len(records) and done["result"]["version"] == "1.0.0"
    assert [p["label"] for p in queued[:1400]] == [p["label"] for p in direct]
    np.testing.assert_allclose(
        [p["probabilities"]["1"] for p in queued[:1400]],
        [p["probabilities"]["1"] for p in direct],
        atol=1e-6,
    )


def test_jobs_travel_as_json_never_pickle(server: ServerProcess, redis: RedisServer) -> None:
    from redis import Redis

    job = httpx.post(
        f"{server.url}/v1/jobs",
        json={"model": "churn", "version": "1.0.0", "records": [train_row()]},
    ).json()
    wait_for(server, job["id"])
    with Redis.from_url(redis.url) as client:
        data = client.hget(f"rq:job:{job['id']}", "data")
    assert data is not None
    payload = json.loads(zlib.decompress(data))  # a pickle would not parse as JSON
    function, _instance, args, _kwargs = payload
    assert function == "course_pkg.serving.jobs.score_job"
    assert args[:2] == ["churn", "1.0.0"]  # a model name and version, never a path


def train_row() -> dict[str, Any]:
    return dict(json.loads(train_churn().x_test.head(1).to_json(orient="records"))[0])


def test_bad_input_is_refused_before_anything_is_queued(
    server: ServerProcess, redis: RedisServer, records: list[dict[str, Any]]
) -> None:
    from redis import Redis

    with Redis.from_url(redis.url) as client:
        before = client.zcard("rq:finished:course-predictions") + client.llen(
            "rq:queue:course-predictions"
        )
    bad = [dict(records[0]), {**records[1], "tenure_months": "a lot"}]
    answer = httpx.post(f"{server.url}/v1/jobs", json={"model": "churn", "records": bad})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["details"][0]["row"] == 1 and error["details"][0]["field"] == "tenure_months"
    unknown = httpx.post(f"{server.url}/v1/jobs", json={"model": "nope", "records": records[:1]})
    assert unknown.status_code == 404 and "churn" in unknown.json()["error"]["message"]
    shapeless = httpx.post(f"{server.url}/v1/jobs", json={"records": records[:1]})
    assert shapeless.status_code == 422 and '"model"' in shapeless.json()["error"]["message"]
    with Redis.from_url(redis.url) as client:
        after = client.zcard("rq:finished:course-predictions") + client.llen(
            "rq:queue:course-predictions"
        )
    assert after == before
    missing = httpx.get(f"{server.url}/v1/jobs/0123456789abcdef")
    assert missing.status_code == 404 and "expired" in missing.json()["error"]["message"]


def test_a_job_the_worker_cannot_serve_fails_with_the_reason(
    server: ServerProcess, records: list[dict[str, Any]]
) -> None:
    job = httpx.post(
        f"{server.url}/v1/jobs", json={"model": "churn", "version": "1.1.0", "records": records}
    ).json()
    assert job["version"] == "1.1.0"
    done = wait_for(server, job["id"])
    assert done["status"] == "failed" and "1.1.0" in done["error"], done
    assert "result" not in done


def test_redis_down_is_a_503_and_the_server_lives_on(
    redis: RedisServer, model_packages: dict[str, Path], records: list[dict[str, Any]]
) -> None:
    with (
        RedisServer() as doomed,
        ServerProcess(
            [model_packages["churn"]], env={"COURSE_SERVE_REDIS_URL": doomed.url}
        ) as server,
    ):
        doomed.stop()
        answer = httpx.post(
            f"{server.url}/v1/jobs", json={"model": "churn", "records": records[:5]}
        )
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "queue_unavailable"
        assert answer.headers["retry-after"] == "5"
        assert httpx.get(f"{server.url}/v1/jobs/whatever").status_code == 503
        predict = httpx.post(f"{server.url}/v1/models/churn/predict", json={"records": records[:5]})
        assert predict.status_code == 200
    assert server.returncode == 0, server.output()
