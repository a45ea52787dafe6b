"""A real Prometheus (Debian's) scraping a real server; PromQL answers checked against traffic."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from course_pkg.monitoring import (
    PrometheusServer,
    error_ratio,
    p99_latency,
    prometheus_config,
    request_rate,
)
from course_pkg.serving.process import ServerProcess
from course_pkg.training import train_churn

JOB = "model-server"


@pytest.fixture(scope="module")
def stack(model_packages: dict[str, Path]) -> Iterator[tuple[ServerProcess, PrometheusServer]]:
    if shutil.which("prometheus") is None:
        reason = "prometheus is not installed (apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}: .ci/run installs it")
        pytest.skip(f"{reason}; CI runs these tests")
    with ServerProcess([model_packages["churn"]]) as server:
        with PrometheusServer({JOB: server.url.removeprefix("http://")}) as prometheus:
            yield server, prometheus
        assert prometheus.returncode == 0, prometheus.output()


def test_config_scrapes_loopback_only() -> None:
    text = prometheus_config({"a": "127.0.0.1:8000"}, scrape_interval_s=0.5)
    assert "scrape_interval: 500ms" in text and "targets: ['127.0.0.1:8000']" in text
    with pytest.raises(ValueError, match="loopback only"):
        prometheus_config({"a": "10.0.0.5:8000"})


def test_rate_errors_and_p99_from_real_scrapes(
    stack: tuple[ServerProcess, PrometheusServer],
) -> None:
    server, prometheus = stack
    prometheus.wait_for_scrape(JOB)
    assert prometheus.targets_health() == {JOB: "up"}
    row: dict[str, Any] = json.loads(train_churn().x_test.head(1).to_json(orient="records"))[0]
    url = f"{server.url}/v1/models/churn/predict"
    with httpx.Client() as client:
        # one of each first, so both series exist before the counted traffic: rate() needs
        # two samples, and a series born at 50 has no rate until it grows again
        client.post(url, json={"records": [row]})
        client.post(url, json={"records": [{**row, "contract": "weekly"}]})
        time.sleep(2.5)
        started = time.monotonic()
        for i in range(400):
            bad = i % 4 == 0
            body = {"records": [{**row, "contract": "weekly"} if bad else row]}
            assert client.post(url, json=body).status_code == (422 if bad else 200)
        elapsed = time.monotonic() - started
    time.sleep(2.5)  # two more scrapes
    window = f"{int(elapsed + 10)}s"
    ratio = prometheus.value(error_ratio(JOB, window))
    assert ratio is not None and 0.2 <= ratio <= 0.3, ratio  # 100 of 400 (+1 of 1)
    rate = prometheus.value(request_rate(JOB, window))
    assert rate is not None and rate > 0
    p99 = prometheus.value(p99_latency(JOB, window))
    assert p99 is not None and 0 < p99 < 1.0, p99  # seconds
    series = prometheus.query_range(request_rate(JOB, "5s"), seconds=15)
    assert series and max(value for _, value in series) > 0


def test_bad_promql_is_a_clear_error(stack: tuple[ServerProcess, PrometheusServer]) -> None:
    _, prometheus = stack
    with pytest.raises(ValueError, match="bad_data"):
        prometheus.query("sum(rate(course_requests_total[5m])")
