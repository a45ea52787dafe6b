"""A real Prometheus for the course: a generated config, a server on 127.0.0.1, PromQL queries.

    with PrometheusServer({"model-server": server_address}) as prometheus:
        ...                                             # send some traffic
        prometheus.wait_for_scrape("model-server")
        prometheus.query(p99_latency("model-server"))   # [{"metric": {...}, "value": [t, "0.004"]}]

Prometheus is Debian's package (``apt-get install prometheus``): the real server, its real
scraping and its real query engine, started with a throwaway data directory and stopped (and
deleted) at the end. It listens on 127.0.0.1 only and scrapes only the 127.0.0.1 targets it is
given. The PromQL helpers below are the queries notebook 07 explains.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from course_pkg.processes import LocalServer, free_port, poll_until

LOOPBACK_PREFIXES = ("127.0.0.1:", "localhost:", "[::1]:")


def prometheus_config(targets: dict[str, str], scrape_interval_s: float = 1.0) -> str:
    """prometheus.yml scraping each ``{job: "127.0.0.1:PORT"}`` every ``scrape_interval_s``.

    A one-second interval suits a lab (charts fill in seconds); production uses 15-60 s.
    """
    for job, address in targets.items():
        if not address.startswith(LOOPBACK_PREFIXES):
            raise ValueError(
                f"{job}: {address!r} is not on 127.0.0.1; the lab scrapes loopback only"
            )
    interval = f"{int(scrape_interval_s * 1000)}ms"
    lines = ["global:", f"  scrape_interval: {interval}", f"  evaluation_interval: {interval}"]
    lines.append("scrape_configs:")
    for job, address in targets.items():
        lines += [
            f"  - job_name: {job!r}",
            "    metrics_path: /metrics",
            "    static_configs:",
            f"      - targets: [{address!r}]",
        ]
    return "\n".join(lines) + "\n"


# Prometheus' own scrapes and health probes are requests too; the traffic queries leave them out.
TRAFFIC = 'route!~"/metrics|/health/.*|/ping"'


def request_rate(job: str, window: str = "30s") -> str:
    """Requests per second over ``window``, summed over routes and statuses.

    ``rate`` needs two samples of a series: a label set that first appears with a count already
    above zero (the first 422 of the day) only counts from its next increase.
    """
    return f'sum(rate(course_requests_total{{job="{job}",{TRAFFIC}}}[{window}]))'


def error_ratio(job: str, window: str = "30s") -> str:
    """The share of requests answered 4xx or 5xx over ``window`` (0 when there were none)."""
    errors = f'sum(rate(course_requests_total{{job="{job}",{TRAFFIC},status=~"[45].."}}[{window}]))'
    return f"({errors} or vector(0)) / {request_rate(job, window)}"


def p99_latency(job: str, window: str = "30s") -> str:
    """The 99th percentile of request latency in seconds, estimated from histogram buckets
    (linear interpolation inside the bucket it falls in: as precise as the buckets are)."""
    buckets = f'rate(course_request_duration_seconds_bucket{{job="{job}",{TRAFFIC}}}[{window}])'
    return f"histogram_quantile(0.99, sum by (le) ({buckets}))"


class PrometheusServer(LocalServer):
    """Debian's ``prometheus`` on 127.0.0.1 with a generated config and a temporary TSDB."""

    what = "prometheus"

    def __init__(
        self,
        targets: dict[str, str],
        *,
        port: int | None = None,
        scrape_interval_s: float = 1.0,
        startup_timeout: float = 30.0,
    ) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise FileNotFoundError("prometheus is not installed: sudo apt-get install prometheus")
        self.workdir = Path(tempfile.mkdtemp(prefix="prometheus-"))
        config = self.workdir / "prometheus.yml"
        config.write_text(prometheus_config(targets, scrape_interval_s))
        port = port or free_port()
        command = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]
        super().__init__(command, port=port, ready_path="/-/ready", startup_timeout=startup_timeout)
        self.targets = dict(targets)

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query through the HTTP API; its ``result`` list (ValueError on errors)."""
        import httpx

        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        body = answer.json()
        if body.get("status") != "success":
            raise ValueError(f"{promql}: {body.get('errorType')}: {body.get('error')}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def value(self, promql: str) -> float | None:
        """The single number an instant query returns (None: no data, e.g. no traffic yet)."""
        result = self.query(promql)
        if not result:
            return None
        return float(result[0]["value"][1])

    def query_range(
        self, promql: str, seconds: float, step_s: float = 1.0
    ) -> list[tuple[float, float]]:
        """(unix time, value) pairs of the last ``seconds`` for a query with one series."""
        import httpx

        end = time.time()
        params: dict[str, str | float] = {
            "query": promql,
            "start": end - seconds,
            "end": end,
            "step": step_s,
        }
        body = httpx.get(f"{self.url}/api/v1/query_range", params=params, timeout=10).json()
        if body.get("status") != "success":
            raise ValueError(f"{promql}: {body.get('errorType')}: {body.get('error')}")
        series = body["data"]["result"]
        return [(float(t), float(v)) for t, v in series[0]["values"]] if series else []

    def targets_health(self) -> dict[str, str]:
        """{job: "up" | "down" | "unknown"} from /api/v1/targets."""
        import httpx

        body = httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()
        return {
            target["labels"]["job"]: target["health"] for target in body["data"]["activeTargets"]
        }

    def wait_for_scrape(self, job: str, timeout: float = 15.0, scrapes: int = 2) -> None:
        """Block until ``job`` has been scraped successfully ``scrapes`` times."""

        def scraped() -> bool:
            count = self.value(f'count_over_time(up{{job="{job}"}}[1h])')
            return count is not None and count >= scrapes and self.targets_health().get(job) == "up"

        try:
            poll_until(scraped, timeout=timeout, what=f"{job}'s scrapes", interval=0.2)
        except TimeoutError:
            raise TimeoutError(
                f"prometheus has not scraped {job} {scrapes} times in {timeout} s"
            ) from None
