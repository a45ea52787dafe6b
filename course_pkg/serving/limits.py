"""Per-client rate limiting (token buckets) and an LRU+TTL prediction cache.

**Rate limits.** One token bucket per (client, model): ``rate`` tokens per second, at most
``burst`` banked. The client is the ``X-API-Key`` header when sent, else the peer address.
An empty bucket answers **429** with ``Retry-After`` (whole seconds until a token) and the
IETF draft headers ``RateLimit-Limit`` / ``RateLimit-Remaining`` / ``RateLimit-Reset``.
Configured per model (``COURSE_SERVE_RATE_LIMITS='{"churn": 50}'``, ``"*"`` for every model);
off by default. Buckets live in an LRU of 10,000 clients, so memory is bounded. These buckets
belong to one process; with ``COURSE_SERVE_REDIS_URL`` set, ``shared.RedisRateLimiter`` keeps
them in Redis instead, so every worker and replica spends the same tokens.

**Cache.** ``PredictionCache`` maps (model, version, sha256, canonical row) → (label,
probabilities). The row is canonicalised (keys sorted, ints and equal floats written alike) and
hashed with BLAKE2b, so ``{"a": 1, "b": 2}`` and ``{"b": 2.0, "a": 1}`` hit the same entry,
while the version and model hash in the key mean a new model version never serves an old
answer. Entries expire after ``ttl`` seconds; the least recently used go first when full.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson

from course_pkg.serving.errors import ApiError


@dataclass
class TokenBucket:
    rate: float  # tokens per second
    burst: int
    tokens: float
    updated: float

    def take(self, now: float) -> tuple[bool, float]:
        """(allowed, seconds until the next token)."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True, 0.0
        return False, (1 - self.tokens) / self.rate


class RateLimiter:
    def __init__(self, limits: dict[str, float], burst: int, max_clients: int = 10_000) -> None:
        self.limits = limits
        self.burst = burst
        self.max_clients = max_clients
        self.buckets: OrderedDict[tuple[str, str], TokenBucket] = OrderedDict()

    def limit_for(self, model: str) -> float | None:
        return self.limits.get(model, self.limits.get("*"))

    def check(self, client: str, model: str, now: float | None = None) -> None:
        """Raise 429 ``ApiError`` when ``client`` has no token left for ``model``."""
        rate = self.limit_for(model)
        if rate is None:
            return
        allowed, wait = self.take(client, model, rate, now)
        if not allowed:
            raise rate_limited(model, rate, self.burst, wait)

    def take(
        self, client: str, model: str, rate: float, now: float | None = None
    ) -> tuple[bool, float]:
        """Spend one of ``client``'s tokens for ``model``: (allowed, seconds until the next)."""
        now = time.monotonic() if now is None else now
        key = (client, model)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(rate, self.burst, float(self.burst), now)
            self.buckets[key] = bucket
            if len(self.buckets) > self.max_clients:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(key)
        return bucket.take(now)


def rate_limited(model: str, rate: float, burst: int, wait: float) -> ApiError:
    """The 429 a spent bucket answers, with Retry-After and the RateLimit-* headers."""
    retry = max(1, math.ceil(wait))
    return ApiError(
        429,
        "rate_limited",
        f"rate limit for {model}: {rate:g} requests/s (burst {burst}) per client; "
        f"retry in {retry} s",
        headers={
            "retry-after": str(retry),
            "ratelimit-limit": str(burst),
            "ratelimit-remaining": "0",
            "ratelimit-reset": str(retry),
        },
    )


def client_id(headers: Any, client: Any) -> str:
    key = headers.get("x-api-key")
    if key:
        return "key:" + hashlib.blake2b(key.encode(), digest_size=8).hexdigest()  # never log keys
    return "addr:" + (client.host if client else "unknown")


def canonical_row(row: dict[str, Any]) -> bytes:
    """Same content → same bytes: sorted keys, integral floats written as ints."""
    normal = {k: (int(v) if isinstance(v, float) and v.is_integer() else v) for k, v in row.items()}
    return orjson.dumps(normal, option=orjson.OPT_SORT_KEYS)


class PredictionCache:
    def __init__(self, size: int, ttl: float) -> None:
        self.size = size
        self.ttl = ttl
        self.entries: OrderedDict[bytes, tuple[float, int, list[float]]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()  # big batches predict on a worker thread

    @staticmethod
    def key(model_key: str, row: dict[str, Any]) -> bytes:
        return hashlib.blake2b(
            model_key.encode() + b"\0" + canonical_row(row), digest_size=16
        ).digest()

    def get(self, key: bytes, now: float) -> tuple[int, list[float]] | None:
        with self._lock:
            entry = self.entries.get(key)
            if entry is None or now - entry[0] > self.ttl:
                if entry is not None:
                    del self.entries[key]
                self.misses += 1
                return None
            self.entries.move_to_end(key)
            self.hits += 1
            return entry[1], entry[2]

    def put(self, key: bytes, label: int, probabilities: list[float], now: float) -> None:
        with self._lock:
            self.entries[key] = (now, label, probabilities)
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)

    def get_many(self, keys: list[bytes], now: float) -> list[tuple[int, list[float]] | None]:
        """``get`` for every key (the Redis cache answers these in one round trip)."""
        return [self.get(key, now) for key in keys]

    def put_many(self, entries: list[tuple[bytes, int, list[float]]], now: float) -> None:
        for key, label, probabilities in entries:
            self.put(key, label, probabilities, now)
