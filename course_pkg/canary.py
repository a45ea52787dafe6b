"""Judge a canary from the server's own metrics: requests, errors and p99 per version.

    before = scrape_versions(server.url, "churn")
    ...                                              # traffic split between stable and canary
    after = scrape_versions(server.url, "churn")
    window = {v: after[v] - before.get(v, VersionStats()) for v in after}
    verdict(window["1.0.0"], window["1.1.0"])        # "promote", "rollback" or "wait"

The numbers come from ``/metrics`` (``course_requests_total`` and the latency histogram,
labelled by version), read directly: no Prometheus needed for one server. Differences of two
scrapes give a window's figures, as ``rate()``/``increase()`` would. p99 is interpolated
within the histogram's bucket the way PromQL's ``histogram_quantile`` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

PREDICT_ROUTES = ("/predict", ":predict", "/infer", "/invocations")


@dataclass
class VersionStats:
    requests: float = 0.0
    errors: float = 0.0  # status >= 400
    buckets: dict[float, float] = field(default_factory=dict)  # le → cumulative count

    def __sub__(self, earlier: VersionStats) -> VersionStats:
        return VersionStats(
            self.requests - earlier.requests,
            self.errors - earlier.errors,
            {le: n - earlier.buckets.get(le, 0.0) for le, n in self.buckets.items()},
        )

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def quantile(self, q: float) -> float:
        """Seconds; ``histogram_quantile``'s linear interpolation inside the bucket."""
        bounds = sorted(self.buckets)
        if not bounds or self.buckets[bounds[-1]] == 0:
            return math.nan
        rank = q * self.buckets[bounds[-1]]
        lower, below = 0.0, 0.0
        for le in bounds:
            count = self.buckets[le]
            if count >= rank:
                if math.isinf(le):
                    return lower  # the highest finite bound, as Prometheus answers
                return lower + (le - lower) * (rank - below) / max(count - below, 1e-12)
            lower, below = le, count
        return lower

    def summary(self) -> dict[str, float]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "p99_ms": round(self.quantile(0.99) * 1000, 2),
        }


def version_stats(exposition: str, model: str) -> dict[str, VersionStats]:
    """{version: stats} for ``model``'s prediction routes in one /metrics text."""
    from prometheus_client.parser import text_string_to_metric_families

    stats: dict[str, VersionStats] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("model") != model or not labels.get("route", "").endswith(PREDICT_ROUTES):
                continue
            entry = stats.setdefault(labels["version"], VersionStats())
            if sample.name == "course_requests_total":
                entry.requests += sample.value
                if int(labels["status"]) >= 400:
                    entry.errors += sample.value
            elif sample.name == "course_request_duration_seconds_bucket":
                le = float(labels["le"])
                entry.buckets[le] = entry.buckets.get(le, 0.0) + sample.value
    return stats


def scrape_versions(url: str, model: str) -> dict[str, VersionStats]:
    import httpx

    return version_stats(httpx.get(f"{url}/metrics", timeout=10).text, model)


def verdict(
    stable: Any,
    canary: Any,
    *,
    min_requests: int = 100,
    min_errors: int = 5,
    error_margin: float = 0.01,
    latency_ratio: float = 1.5,
) -> str:
    """ "rollback", "wait" or "promote", from ``{"requests", "errors", "p99_ms"}`` mappings.

    1. Roll back when the canary's error rate exceeds stable's by more than ``error_margin``
       and it has at least ``min_errors`` errors: enough evidence at any traffic.
    2. Otherwise wait while the canary has fewer than ``min_requests`` requests.
    3. Roll back when its p99 is more than ``latency_ratio`` × stable's.
    4. Otherwise promote.
    """

    def rate(s: Any) -> float:
        return float(s["errors"]) / float(s["requests"]) if s["requests"] else 0.0

    if canary["errors"] >= min_errors and rate(canary) > rate(stable) + error_margin:
        return "rollback"
    if canary["requests"] < min_requests:
        return "wait"
    if canary["p99_ms"] > latency_ratio * stable["p99_ms"]:
        return "rollback"
    return "promote"
