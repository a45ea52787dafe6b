"""Two workers, one state: a real redis-server and a real `course-pkg serve --workers 2`.

Which worker answered is in ``X-Served-By`` (its pid; COURSE_SERVE_SERVED_BY_HEADER). Fresh
connections (``Connection: close``) land on either worker, so every test checks that both
answered before it trusts a figure.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from course_pkg.checks.nb04 import GOOD
from course_pkg.serving.process import RedisServer, ServerProcess

TOKEN = "shared-state-admin-token-0123"
AUTH = {"authorization": f"Bearer {TOKEN}"}
FRESH = {"connection": "close"}  # a new connection each time: either worker may take it


def two_workers(packages: list[Path], redis_url: str, **settings: str) -> ServerProcess:
    env = {
        "COURSE_SERVE_REDIS_URL": redis_url,
        "COURSE_SERVE_REDIS_PREFIX": f"test-{uuid.uuid4().hex[:8]}",  # nothing left by others
        "COURSE_SERVE_SERVED_BY_HEADER": "true",
        "COURSE_SERVE_ACCESS_LOG": "false",
        **{f"COURSE_SERVE_{key.upper()}": value for key, value in settings.items()},
    }
    return ServerProcess(packages, workers=2, env=env)


def predict(server: ServerProcess, row: dict[str, Any] | None = None) -> httpx.Response:
    body = {"records": [row or GOOD]}
    return httpx.post(f"{server.url}/v1/models/churn/predict", json=body, headers=FRESH)


def by_worker(
    server: ServerProcess, count: int, row: dict[str, Any] | None = None, most: int = 400
) -> dict[str, list[str]]:
    """{pid: [versions answered]} over at least ``count`` fresh-connection predictions, and
    more (up to ``most``) until two workers answered: the kernel hands connections to workers
    unevenly, all to one for a while on a busy machine."""
    seen: dict[str, list[str]] = {}
    for sent in range(most):
        if sent >= count and len(seen) >= 2:
            break
        answer = predict(server, row)
        assert answer.status_code == 200, answer.text
        seen.setdefault(answer.headers["x-served-by"], []).append(answer.headers["x-model-version"])
    return seen


def cache_counts(server: ServerProcess) -> Counter[str]:
    text = httpx.get(f"{server.url}/metrics").text
    counts: Counter[str] = Counter()
    for result, value in re.findall(
        r'^course_prediction_cache_total\{model="churn",result="(\w+)"\} ([\d.e+]+)$', text, re.M
    ):
        counts[result] += int(float(value))
    return counts


@pytest.fixture(scope="module")
def server(redis: RedisServer, model_packages: dict[str, Path]) -> Iterator[ServerProcess]:
    packages = [model_packages["churn"], model_packages["churn_v2"]]
    with two_workers(
        packages,
        redis.url,
        admin_token=TOKEN,
        cache_size="1000",
        routing='{"churn": {"aliases": {"stable": "1.0.0"}}}',
    ) as running:
        yield running
    assert running.returncode == 0, running.output()


def test_an_admin_alias_change_reaches_every_worker_within_a_second(
    server: ServerProcess,
) -> None:
    before = by_worker(server, 30)
    assert len(before) == 2, f"one worker answered everything: {before}"
    assert {v for versions in before.values() for v in versions} == {"1.0.0"}
    moved = httpx.put(
        f"{server.url}/admin/models/churn/aliases/stable", json={"version": "1.1.0"}, headers=AUTH
    )
    assert moved.status_code == 200, moved.text
    time.sleep(1.0)
    after = by_worker(server, 30)
    assert len(after) == 2, f"one worker answered everything: {after}"
    assert after.keys() == before.keys()  # the same two workers, not restarted ones
    assert {v for versions in after.values() for v in versions} == {"1.1.0"}, after
    back = httpx.post(f"{server.url}/admin/models/churn/rollback", headers=AUTH)
    assert back.status_code == 200 and back.json()["aliases"]["stable"] == "1.0.0", back.text
    time.sleep(1.0)
    assert {v for vs in by_worker(server, 20).values() for v in vs} == {"1.0.0"}


def test_a_version_loaded_through_one_worker_is_served_by_both(
    redis: RedisServer, model_packages: dict[str, Path]
) -> None:
    with two_workers([model_packages["churn"]], redis.url, admin_token=TOKEN) as server:
        loaded = httpx.post(
            f"{server.url}/admin/models",
            json={"path": str(model_packages["churn_v2"])},
            headers=AUTH,
        )
        assert loaded.status_code == 201, loaded.text
        time.sleep(1.5)  # the other worker's poller loads (verifies, warms) the package
        pinned: dict[str | None, set[int]] = {}
        for sent in range(200):
            answer = httpx.post(
                f"{server.url}/v1/models/churn/versions/1.1.0/predict",
                json={"records": [GOOD]},
                headers=FRESH,
            )
            pinned.setdefault(answer.headers.get("x-served-by"), set()).add(answer.status_code)
            if len(pinned) == 2 and sent >= 20:
                break
        assert len(pinned) == 2 and all(codes == {200} for codes in pinned.values()), pinned
        gone = httpx.delete(f"{server.url}/admin/models/churn/versions/1.1.0", headers=AUTH)
        assert gone.status_code == 200, gone.text
        time.sleep(1.0)
        after = {
            httpx.post(
                f"{server.url}/v1/models/churn/versions/1.1.0/predict",
                json={"records": [GOOD]},
                headers=FRESH,
            ).status_code
            for _ in range(30)
        }
        assert after == {404}, after  # unloaded on every worker
    assert server.returncode == 0, server.output()


def test_a_cache_hit_on_one_worker_is_a_hit_on_the_other(server: ServerProcess) -> None:
    row = {**GOOD, "monthly_charges": 70.123456}  # a row no other test sent
    start = cache_counts(server)
    first = predict(server, row)
    assert first.status_code == 200, first.text
    workers = by_worker(server, 30, row)
    again = sum(len(answers) for answers in workers.values())
    workers.setdefault(first.headers["x-served-by"], []).append("first")
    assert len(workers) == 2, f"one worker answered everything: {workers}"
    counts = cache_counts(server)
    # per-process caches would miss once on each worker; a shared one misses once in all
    assert counts["miss"] - start["miss"] == 1, (start, counts)
    assert counts["hit"] - start["hit"] == again, (start, counts)


def test_a_50_per_second_limit_holds_across_two_workers(
    redis: RedisServer, model_packages: dict[str, Path]
) -> None:
    seconds = 5.0
    # burst 50 (1 s of tokens) rides out the stalls of a busy machine: a pause in the load
    # longer than burst/rate wastes tokens, and the test would measure the machine instead
    with two_workers(
        [model_packages["churn"]], redis.url, rate_limits='{"churn": 50}', rate_limit_burst="50"
    ) as server:
        statuses, workers = asyncio.run(hammer(server.url, seconds, connections=8))
    assert len(workers) == 2, f"one worker answered everything: {workers}"
    assert set(statuses) <= {200, 429}, statuses
    passed = statuses[200] / seconds
    # 50/s + the burst once: at most 60/s over 5 s; per-worker buckets would allow twice that
    assert 40 <= passed <= 65, f"{passed:.1f} requests/s passed ({statuses})"
    assert statuses[429] > 0  # the load really was over the limit


async def hammer(url: str, seconds: float, connections: int) -> tuple[Counter[int], Counter[str]]:
    """Predictions as fast as ``connections`` concurrent clients allow, for ``seconds``
    (aiohttp: a third of httpx's client cost, so a busy machine still offers enough load)."""
    import aiohttp

    statuses: Counter[int] = Counter()
    workers: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    body = {"records": [GOOD]}

    async def one_connection(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            async with session.post(f"{url}/v1/models/churn/predict", json=body) as answer:
                await answer.read()
                statuses[answer.status] += 1
                workers[answer.headers.get("x-served-by", "?")] += 1

    # a new connection per request: the kernel hands each to whichever worker accepts first,
    # so both workers serve (keep-alive connections can all land on one worker)
    connector = aiohttp.TCPConnector(limit=connections, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(one_connection(session) for _ in range(connections)))
    return statuses, workers


def test_redis_down_predictions_go_on_and_ready_says_so(
    redis: RedisServer, model_packages: dict[str, Path]
) -> None:
    doomed = RedisServer().start()  # its own: this one gets killed
    try:
        with two_workers(
            [model_packages["churn"], model_packages["churn_v2"]],
            doomed.url,
            admin_token=TOKEN,
            cache_size="100",
            rate_limits='{"churn": 1000}',
        ) as server:
            ready = httpx.get(f"{server.url}/health/ready").json()
            assert ready["shared_state"]["redis"] == "ok", ready
            doomed.stop()  # Redis killed mid-run
            workers = by_worker(server, 20)  # predictions keep working on both workers
            assert len(workers) == 2, workers
            time.sleep(0.5)  # every worker's poller has met the dead Redis by now
            for _ in range(4):
                ready_now = httpx.get(f"{server.url}/health/ready", headers=FRESH)
                assert ready_now.status_code == 200  # still serving: ready, and says why not
                state = ready_now.json()["shared_state"]
                assert (
                    state["redis"] == "unreachable" and state["rate_limit_on_redis_down"] == "open"
                )
            change = httpx.put(
                f"{server.url}/admin/models/churn/aliases/canary",
                json={"version": "1.1.0"},
                headers=AUTH,
            )
            assert change.status_code == 503, change.text
            assert change.json()["error"]["code"] == "routing_unavailable"
        assert server.returncode == 0, server.output()
    finally:
        doomed.stop()
        doomed.close()
