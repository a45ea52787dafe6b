"""A/B routing and rollback in a real uvicorn server under load; locust against it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from course_pkg.checks.nb04 import GOOD
from course_pkg.loadtest import run_load
from course_pkg.serving.process import ServerProcess

TOKEN = "integration-admin-token-0123"
ROOT = Path(__file__).resolve().parents[2]
START = {"churn": {"aliases": {"stable": "1.0.0", "canary": "1.1.0"}}}


@pytest.fixture(scope="module")
def server(model_packages: dict[str, Path]) -> Iterator[ServerProcess]:
    env = {
        "COURSE_SERVE_ADMIN_TOKEN": TOKEN,
        "COURSE_SERVE_ROUTING": json.dumps(START),
        "COURSE_SERVE_ACCESS_LOG": "false",
    }
    packages = [model_packages["churn"], model_packages["churn_v2"]]
    with ServerProcess(packages, env=env) as running:
        yield running
    assert running.returncode == 0, running.output()


def admin(server: ServerProcess, method: str, path: str, body: object = None) -> dict[str, object]:
    response = httpx.request(
        method,
        f"{server.url}/admin/models/churn/{path}",
        json=body,
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    response.raise_for_status()
    result: dict[str, object] = response.json()
    return result


def test_split_and_rollback_under_load_fail_no_request(server: ServerProcess) -> None:
    def split_half() -> object:
        return admin(server, "PUT", "traffic", {"weights": {"stable": 50, "canary": 50}})

    def rollback() -> object:
        return admin(server, "POST", "rollback")

    result = run_load(
        f"{server.url}/v1/models/churn/predict",
        {"records": [GOOD]},
        concurrency=64,
        requests=200_000,
        duration_s=6.0,
        client_ids=True,
        actions=[(1.5, split_half), (3.5, rollback)],
    )
    assert result.errors == 0 and set(result.statuses) == {200}, result.summary()
    (split_began, split_done, _, split), (back_began, back_done, _, back) = result.actions
    assert isinstance(split, dict) and isinstance(back, dict), result.actions
    assert result.split(until_s=split_began) == {"1.0.0": 1.0}
    during = result.split(split_done + 0.3, back_began)
    assert 0.2 < during.get("1.1.0", 0) < 0.8, during  # 64 sticky clients, about half
    assert result.split(since_s=back_done + 0.3) == {"1.0.0": 1.0}
    assert result.requests > 2_000, result.summary()


def test_locust_thousands_of_users_bounded(server: ServerProcess, tmp_path: Path) -> None:
    admin(server, "PUT", "traffic", {"weights": {"stable": 90, "canary": 10}})
    versions = tmp_path / "versions.json"
    command = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py"),
        "--headless", "--host", server.url, "--users", "2000", "--spawn-rate", "1000",
        "--run-time", "12s", "--only-summary", "--csv", str(tmp_path / "stats"),
        "--versions-out", str(versions), "--exit-code-on-error", "1",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(versions.read_text())
    requests, counts = summary["requests"], summary["versions"]
    assert requests > 3_000 and summary["failures"] == 0, summary
    assert sum(counts.values()) == requests
    # the latencies come from the same totals as the counts (notebook 08 prints them)
    assert 0 < summary["median_ms"] <= summary["p95_ms"] <= summary["p99_ms"], summary
    assert summary["requests_per_s"] > 0, summary
    assert (tmp_path / "stats_stats.csv").exists()  # locust's own tables, for the docs
    assert 0.03 < counts.get("1.1.0", 0) / requests < 0.2, counts  # ~10 % of 2,000 customers
    admin(server, "PUT", "traffic", {"weights": {}})


def test_locustfile_refuses_unbounded_or_remote_runs(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py")]
    cases = [
        (["--headless", "--host", "http://example.com", "--run-time", "5s"], "only http://127"),
        (["--headless", "--host", "http://127.0.0.1:9"], "--run-time is required"),
        (["--headless", "--host", "http://127.0.0.1:9", "-t", "5s", "-u", "9000"], "at most"),
    ]
    for args, words in cases:
        done = subprocess.run(base + args, capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert done.returncode == 2 and words in done.stderr, (args, done.stderr[-500:])


def test_routing_reaches_every_worker(model_packages: dict[str, Path]) -> None:
    """COURSE_SERVE_ROUTING travels to worker processes as JSON (dict settings did not)."""
    routing = {"churn": {"aliases": {"stable": "1.0.0"}}}
    packages = [model_packages["churn"], model_packages["churn_v2"]]
    with (
        ServerProcess(
            packages, workers=2, env={"COURSE_SERVE_ROUTING": json.dumps(routing)}
        ) as running,
        httpx.Client() as client,
    ):
        seen = {
            client.post(
                f"{running.url}/v1/models/churn/predict",
                json={"records": [GOOD]},
                headers={"connection": "close"},
            ).headers["x-model-version"]
            for _ in range(20)
        }
    assert seen == {"1.0.0"}  # without the routing, stable would be the highest: 1.1.0
