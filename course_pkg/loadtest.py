"""A bounded load generator for 127.0.0.1, with percentiles, plots and an SLA verdict.

    result = run_load("http://127.0.0.1:8000/v1/models/churn/predict", {"records": [row]},
                      concurrency=8, requests=2_000, duration_s=10)
    print(result.summary())            # p50/p95/p99, req/s, error rate, status codes
    result.judge(SLA(p99_ms=50, min_rps=200)).ok
    result.plot()                      # latency histogram + percentiles over time
    result.versions                    # Counter of X-Model-Version: the A/B split seen

With ``client_ids=True`` each virtual user sends its own ``X-Client-Id`` (``user-0``, …), so
a sticky A/B split sees distinct clients. ``actions=[(2.0, rollback)]`` calls each function
(on a helper thread) that many seconds into the run: a rollback or deploy *during* load.

Safety by construction: only loopback URLs (127.0.0.1, ::1, localhost) are accepted, and every
run stops at ``requests`` *and* ``duration_s``, whichever comes first (hard caps below). The
client is asyncio + aiohttp in one process: it shares the CPU with the server on a laptop, so for
absolute figures use wrk (benchmarks/serve_bench.py); for SLA checks, trends and comparisons
between configurations of the same server it is what notebooks and tests need.

Latency is measured from sending a request to the end of its response (closed loop: each of
``concurrency`` clients sends its next request when the last one is answered). With ``rate``
the clients instead follow a fixed schedule (open loop) and latency counts from the *scheduled*
send time, so a server that falls behind is charged for the queueing it causes (no
"coordinated omission").
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

MAX_REQUESTS = 1_000_000
MAX_DURATION_S = 600.0
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass(frozen=True)
class SLA:
    p99_ms: float
    p95_ms: float | None = None
    min_rps: float | None = None
    max_error_rate: float = 0.0


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reasons: list[str]

    def __str__(self) -> str:
        return ("SLA met" if self.ok else "SLA missed") + ": " + "; ".join(self.reasons)


@dataclass
class LoadResult:
    latencies_ms: np.ndarray  # one per answered request, in completion order
    finished_s: np.ndarray  # completion time since start, same order
    statuses: Counter[int]
    transport_errors: int
    seconds: float
    concurrency: int
    extra: dict[str, Any] = field(default_factory=dict)
    served_by: list[str] = field(default_factory=list)  # X-Model-Version, completion order
    # (started s, finished s, name, result or exception) per action run during the load
    actions: list[tuple[float, float, str, Any]] = field(default_factory=list)

    @property
    def versions(self) -> Counter[str]:
        return Counter(self.served_by)

    def split(self, since_s: float = 0.0, until_s: float = float("inf")) -> dict[str, float]:
        """Share of answers per version among those finished in [since_s, until_s)."""
        chosen = [
            v
            for v, t in zip(self.served_by, self.finished_s.tolist(), strict=True)
            if since_s <= t < until_s
        ]
        counts = Counter(chosen)
        return {v: n / len(chosen) for v, n in sorted(counts.items())} if chosen else {}

    @property
    def requests(self) -> int:
        return int(sum(self.statuses.values()) + self.transport_errors)

    @property
    def errors(self) -> int:
        bad = sum(n for code, n in self.statuses.items() if code >= 400)
        return int(bad + self.transport_errors)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """Nearest rank: a latency that was observed (what wrk and locust report), never an
        interpolation between two."""
        if not len(self.latencies_ms):
            return float("nan")
        return float(np.percentile(self.latencies_ms, q, method="inverted_cdf"))

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
            "req/s": round(self.throughput, 1),
            "p50 ms": round(self.percentile(50), 2),
            "p95 ms": round(self.percentile(95), 2),
            "p99 ms": round(self.percentile(99), 2),
            "error rate": round(self.error_rate, 4),
            "statuses": dict(sorted(self.statuses.items())),
        }

    def judge(self, sla: SLA) -> Verdict:
        reasons, ok = [], True
        checks = [("p99", self.percentile(99), sla.p99_ms)]
        if sla.p95_ms is not None:
            checks.append(("p95", self.percentile(95), sla.p95_ms))
        for name, value, limit in checks:
            good = value <= limit
            ok &= good
            reasons.append(f"{name} {value:.1f} ms {'≤' if good else '>'} {limit:g} ms")
        if sla.min_rps is not None:
            good = self.throughput >= sla.min_rps
            ok &= good
            reasons.append(f"{self.throughput:,.0f} req/s {'≥' if good else '<'} {sla.min_rps:g}")
        good = self.error_rate <= sla.max_error_rate
        ok &= good
        reasons.append(
            f"errors {self.error_rate:.2%} {'≤' if good else '>'} {sla.max_error_rate:.2%}"
        )
        return Verdict(bool(ok), reasons)

    def plot(self, sla: SLA | None = None, window_s: float = 0.5) -> Any:
        """Latency histogram and p50/p99 per time window; returns the matplotlib figure."""
        import matplotlib.pyplot as plt

        fig, (hist, trend) = plt.subplots(1, 2, figsize=(10, 3.2))
        hist.hist(self.latencies_ms, bins=50, color="#4c72b0")
        hist.set_xlabel("latency (ms)")
        hist.set_ylabel("requests")
        hist.set_title(f"{self.requests:,} requests, {self.concurrency} clients")
        edges = np.arange(0, self.seconds + window_s, window_s)
        slot = np.digitize(self.finished_s, edges)
        times, p50, p99 = [], [], []
        for index in np.unique(slot):
            chunk = self.latencies_ms[slot == index]
            times.append(edges[min(index, len(edges) - 1)])
            p50.append(np.percentile(chunk, 50, method="inverted_cdf"))
            p99.append(np.percentile(chunk, 99, method="inverted_cdf"))
        trend.plot(times, p50, label="p50")
        trend.plot(times, p99, label="p99")
        if sla is not None:
            trend.axhline(sla.p99_ms, color="red", linestyle="--", label="SLA p99")
            hist.axvline(sla.p99_ms, color="red", linestyle="--")
        trend.set_xlabel("seconds")
        trend.set_ylabel("latency (ms)")
        trend.legend()
        trend.set_title("percentiles over time")
        fig.tight_layout()
        return fig


def _check_target(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in LOOPBACK:
        raise ValueError(f"{url}: the load generator only targets 127.0.0.1/::1/localhost")


async def _run(
    url: str,
    body: Any,
    *,
    concurrency: int,
    requests: int,
    duration_s: float,
    rate: float | None,
    headers: dict[str, str] | None,
    client_ids: bool = False,
    actions: Sequence[tuple[float, Callable[[], Any]]] = (),
) -> LoadResult:
    import aiohttp
    import orjson

    latencies: list[float] = []
    finished: list[float] = []
    statuses: Counter[int] = Counter()
    served_by: list[str] = []
    done_actions: list[tuple[float, float, str, Any]] = []
    transport_errors = 0
    issued = 0
    start = time.perf_counter()
    deadline = start + duration_s

    def next_ticket() -> int | None:
        nonlocal issued
        if issued >= requests or time.perf_counter() >= deadline:
            return None
        issued += 1
        return issued - 1

    # aiohttp, one keep-alive connection per virtual user: httpx's async client cost ~1 ms of
    # client CPU per request here (and a shared pool serialised on its lock), which made the
    # client, not the server, the bottleneck at a few hundred req/s.
    payload = orjson.dumps(body)
    send_headers = {"content-type": "application/json", **(headers or {})}
    timeout = aiohttp.ClientTimeout(total=30.0)

    async def act(at_s: float, action: Callable[[], Any]) -> None:
        await asyncio.sleep(max(0.0, start + at_s - time.perf_counter()))
        if time.perf_counter() >= deadline or issued >= requests:
            return  # the run ended first
        began = time.perf_counter() - start
        try:
            outcome = await asyncio.to_thread(action)
        except Exception as error:  # reported, and the load goes on
            outcome = error
        name = getattr(action, "__name__", repr(action))
        done_actions.append((began, time.perf_counter() - start, name, outcome))

    async def worker(user: int) -> None:
        nonlocal transport_errors
        own = {**send_headers, "x-client-id": f"user-{user}"} if client_ids else send_headers
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            while (ticket := next_ticket()) is not None:
                sent = time.perf_counter()
                if rate is not None:
                    scheduled = start + ticket / rate
                    if scheduled > sent:
                        await asyncio.sleep(scheduled - sent)
                    sent = scheduled  # charge the server for any queueing it caused
                try:
                    async with session.post(url, data=payload, headers=own) as response:
                        await response.read()
                        statuses[response.status] += 1
                        version = response.headers.get("x-model-version", "")
                except (aiohttp.ClientError, TimeoutError):
                    transport_errors += 1
                    continue
                now = time.perf_counter()
                latencies.append((now - sent) * 1000)
                finished.append(now - start)
                served_by.append(version)

    pending = [asyncio.create_task(act(at_s, action)) for at_s, action in actions]
    await asyncio.gather(*(worker(user) for user in range(concurrency)))
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return LoadResult(
        latencies_ms=np.asarray(latencies),
        finished_s=np.asarray(finished),
        statuses=statuses,
        transport_errors=transport_errors,
        seconds=time.perf_counter() - start,
        concurrency=concurrency,
        served_by=served_by,
        actions=done_actions,
    )


def run_load(
    url: str,
    body: Any,
    *,
    concurrency: int = 8,
    requests: int = 1_000,
    duration_s: float = 10.0,
    rate: float | None = None,
    headers: dict[str, str] | None = None,
    client_ids: bool = False,
    actions: Sequence[tuple[float, Callable[[], Any]]] = (),
) -> LoadResult:
    """POST ``body`` (JSON) to ``url`` until ``requests`` are sent or ``duration_s`` passes."""
    _check_target(url)
    if not 1 <= requests <= MAX_REQUESTS:
        raise ValueError(f"requests must be 1..{MAX_REQUESTS:,}")
    if not 0 < duration_s <= MAX_DURATION_S:
        raise ValueError(f"duration_s must be in (0, {MAX_DURATION_S:g}]")
    if not 1 <= concurrency <= 1024:
        raise ValueError("concurrency must be 1..1024")
    if rate is not None and rate <= 0:
        raise ValueError("rate must be positive")
    coroutine = _run(
        url,
        body,
        concurrency=concurrency,
        requests=requests,
        duration_s=duration_s,
        rate=rate,
        headers=headers,
        client_ids=client_ids,
        actions=actions,
    )
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # inside a running loop (Jupyter): run it on a fresh loop in a helper thread
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
