"""course_pkg.loadtest against a real server process on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from course_pkg.loadtest import SLA, run_load
from course_pkg.serving.process import ServerProcess
from course_pkg.training import train_churn


@pytest.fixture(scope="module")
def body() -> dict[str, Any]:
    return {"records": json.loads(train_churn().x_test.head(1).to_json(orient="records"))}


@pytest.fixture(scope="module")
def server(model_packages: dict[str, Path]) -> Iterator[ServerProcess]:
    with ServerProcess([model_packages["churn"]]) as running:
        yield running


def test_closed_loop_percentiles_and_sla(server: ServerProcess, body: dict[str, Any]) -> None:
    result = run_load(f"{server.url}/v1/models/churn/predict", body, concurrency=4, requests=400)
    assert result.requests == 400 and result.statuses == {200: 400} and result.error_rate == 0
    p50, p95, p99 = (result.percentile(q) for q in (50, 95, 99))
    assert 0 < p50 <= p95 <= p99
    assert result.throughput > 0 and len(result.latencies_ms) == 400
    relaxed = result.judge(SLA(p99_ms=5_000, min_rps=1))
    assert relaxed.ok, relaxed
    strict = result.judge(SLA(p99_ms=0.001))
    assert not strict.ok and "p99" in str(strict) and ">" in strict.reasons[0]
    import matplotlib

    matplotlib.use("Agg")
    figure = result.plot(SLA(p99_ms=50))
    assert len(figure.axes) == 2


def test_open_loop_rate_and_bounds(server: ServerProcess, body: dict[str, Any]) -> None:
    result = run_load(
        f"{server.url}/v1/models/churn/predict",
        body,
        concurrency=2,
        requests=10_000,
        duration_s=1.0,
        rate=50,
    )
    assert 40 <= result.requests <= 60  # ~50 req/s for 1 s: the schedule, not the server
    assert result.seconds < 3


def test_errors_count_against_the_sla(
    model_packages: dict[str, Path], body: dict[str, Any]
) -> None:
    with ServerProcess(
        [model_packages["churn"]],
        env={"COURSE_SERVE_RATE_LIMITS": '{"churn": 5}', "COURSE_SERVE_RATE_LIMIT_BURST": "5"},
    ) as limited:
        result = run_load(
            f"{limited.url}/v1/models/churn/predict", body, concurrency=2, requests=60
        )
    assert result.statuses[429] > 0 and result.statuses[200] >= 5
    verdict = result.judge(SLA(p99_ms=5_000))
    assert not verdict.ok and "errors" in verdict.reasons[-1]


def test_only_loopback_and_bounded() -> None:
    with pytest.raises(ValueError, match=r"only targets 127\.0\.0\.1"):
        run_load("http://10.0.0.1:8000/x", {}, requests=1)
    with pytest.raises(ValueError, match=r"only targets 127\.0\.0\.1"):
        run_load("http://example.com/x", {}, requests=1)
    with pytest.raises(ValueError, match="requests"):
        run_load("http://127.0.0.1:9/x", {}, requests=0)
    with pytest.raises(ValueError, match="duration_s"):
        run_load("http://127.0.0.1:9/x", {}, duration_s=10_000)
