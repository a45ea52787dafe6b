"""Locust: thousands of simulated customers scoring churn rows against the reference server.

    locust -f loadtests/locustfile.py --headless --host http://127.0.0.1:8000 \\
        --users 2000 --spawn-rate 500 --run-time 30s --versions-out build/versions.json

Each simulated user is one customer with its own ``X-Client-Id`` (so a sticky A/B split
keeps them on one version), thinks 2-4 s between requests and posts one row (from a fixed
pool generated with the course's seed) to the unversioned route. A request counts as failed
unless it is a 200 naming the version that served it; ``--versions-out`` writes the request
and failure counts and how many answers each version gave. Bounded by design (network
hygiene): the host must be loopback, ``--run-time`` is required and at most 600 s, and at most
5,000 users.

FastHttpUser (geventhttpclient) rather than HttpUser (requests): several times less client
CPU per request, which matters when locust and the server share a 2-core laptop.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from locust import FastHttpUser, between, events, task

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
MAX_USERS = 5_000
MAX_RUN_TIME_S = 600
MODEL = "churn"
VERSIONS: Counter[str] = Counter()
_ids = itertools.count()


def _rows(n: int = 256) -> list[dict[str, Any]]:
    from course_pkg.datasets.churn import generate_churn

    frame = generate_churn(n).drop(columns=["churned", "customer_id"], errors="ignore")
    return json.loads(frame.to_json(orient="records"))


ROWS = _rows()


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    parser.add_argument(
        "--versions-out", default="", help="write requests, failures and answers per version"
    )


@events.init.add_listener
def _bounded(environment: Any, **_: Any) -> None:
    """Refuse anything but a short run against this machine (exit 2 with the reason)."""
    options = environment.parsed_options
    if options is None:  # used as a library: the caller is responsible
        return
    problems = []
    if urlsplit(environment.host or "").hostname not in LOOPBACK:
        problems.append(f"--host {environment.host!r}: only http://127.0.0.1:PORT is allowed")
    if not options.run_time or options.run_time > MAX_RUN_TIME_S:
        problems.append(f"--run-time is required and at most {MAX_RUN_TIME_S}s")
    if options.num_users and options.num_users > MAX_USERS:
        problems.append(f"--users {options.num_users}: at most {MAX_USERS:,}")
    if problems:
        print("locustfile: " + "; ".join(problems), file=sys.stderr)
        sys.exit(2)


@events.test_stop.add_listener
def _write_versions(environment: Any, **_: Any) -> None:
    options = environment.parsed_options
    if options is not None and options.versions_out:
        total = environment.stats.total
        # One object at one moment: the summary's counts and latencies agree with each other
        # (locust's --csv files are written on their own schedule and can lag behind).
        summary = {
            "requests": total.num_requests,
            "failures": total.num_failures,
            "versions": dict(VERSIONS),
            "requests_per_s": round(total.total_rps, 1),
            "median_ms": total.get_response_time_percentile(0.5),
            "p95_ms": total.get_response_time_percentile(0.95),
            "p99_ms": total.get_response_time_percentile(0.99),
        }
        Path(options.versions_out).write_text(json.dumps(summary, sort_keys=True))


class Customer(FastHttpUser):
    wait_time = between(2, 4)

    def on_start(self) -> None:
        self.number = next(_ids)
        self.headers = {"x-client-id": f"customer-{self.number}"}

    @task
    def predict(self) -> None:
        row = ROWS[self.number % len(ROWS)]
        with self.client.post(
            f"/v1/models/{MODEL}/predict",
            json={"records": [row]},
            headers=self.headers,
            name=f"/v1/models/{MODEL}/predict",
            catch_response=True,
        ) as response:
            version = response.headers.get("x-model-version") if response.headers else None
            if response.status_code != 200 or not version:
                response.failure(f"status {response.status_code}, version {version!r}")
                return
            VERSIONS[version] += 1
            response.success()
