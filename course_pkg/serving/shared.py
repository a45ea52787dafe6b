"""State that several server processes must share, kept in Redis: rate limits and the cache.

With ``COURSE_SERVE_REDIS_URL`` set (the Redis the job queue already uses), every worker and
every replica spends one token bucket per (client, model) and reads one prediction cache;
the routing table follows in ``routing_sync``. Without it these live in each process, which
is why ``--workers N`` with a rate limit and no Redis refuses to start (``settings``).

**Rate limits** are the same token buckets as ``limits.RateLimiter`` (rate, burst, the same
429 and headers), updated by one Lua script: read, refill, spend and write happen atomically
inside Redis, on Redis's clock (``TIME``), so two workers can never spend the same token and
the processes' clocks do not matter. Why not the ``limits`` library's Redis storage: it
offers fixed and moving windows, not a token bucket with a burst, which is what this server's
limits have always meant; the script is the whole algorithm in fifteen lines.

**The cache** maps the same BLAKE2b keys as ``limits.PredictionCache`` to orjson
``[label, probabilities]`` with a TTL (``SET PX``): one ``MGET`` per request, one pipelined
write for the misses. Its size is bounded by the TTL and Redis's own ``maxmemory`` policy.

**Redis down.** Every call has a short timeout; a failure opens a breaker for ``retry_s``, so
while Redis is down no request waits on it. Predictions keep working (cache lookups become
misses), the limiter fails open (lets requests through) or closed (503) as configured, and
``/health/ready`` reports the link's state without failing readiness.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Literal

import orjson

from course_pkg.serving.errors import ApiError
from course_pkg.serving.limits import PredictionCache, RateLimiter

if TYPE_CHECKING:
    from redis import Redis

LOG = logging.getLogger("course_pkg.serving.shared")

# KEYS[1]: the bucket (a hash: tokens, updated); ARGV: rate (tokens/s), burst.
# Returns {allowed (0/1), seconds until the next token (a string: Lua numbers become ints)}.
TOKEN_BUCKET = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens, updated = tonumber(state[1]), tonumber(state[2])
if tokens == nil then tokens, updated = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local allowed, wait = 0, (1 - tokens) / rate
if tokens >= 1 then tokens, allowed, wait = tokens - 1, 1, 0 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(wait)}
"""


class RedisLink:
    """One process's connection pool to Redis, with a breaker and a status for /health/ready.

    ``available()`` is False for ``retry_s`` after a failure: callers skip Redis then, so a
    dead or slow Redis costs each request nothing after the first timeout.
    """

    def __init__(
        self, url: str, prefix: str, *, timeout_s: float = 0.25, retry_s: float = 1.0
    ) -> None:
        from redis import Redis

        self.url = url
        self.prefix = prefix
        self.retry_s = retry_s
        self.client: Redis = Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._down_until = 0.0
        self._lock = threading.Lock()
        self.error: str | None = None  # the last failure while down; None when up
        self.down_since: float | None = None

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def failed(self, error: Exception) -> None:
        with self._lock:
            self._down_until = time.monotonic() + self.retry_s
            if self.error is None:
                LOG.warning("redis %s unreachable: %s", self.safe_url, error)
                self.down_since = time.time()
            self.error = f"{type(error).__name__}: {error}"

    def succeeded(self) -> None:
        if self.error is not None:
            with self._lock:
                LOG.warning("redis %s reachable again", self.safe_url)
                self.error, self.down_since = None, None

    @property
    def safe_url(self) -> str:
        """The URL without a password, for logs and /health/ready."""
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        host = parts.hostname or ""
        return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"

    def status(self) -> dict[str, Any]:
        if self.error is None:
            return {"redis": "ok", "url": self.safe_url}
        return {
            "redis": "unreachable",
            "url": self.safe_url,
            "error": self.error,
            "since": round(self.down_since or 0.0, 3),
        }

    def close(self) -> None:
        self.client.close()


class RedisRateLimiter(RateLimiter):
    """``RateLimiter`` whose buckets live in Redis: one limit across every worker/replica."""

    def __init__(
        self,
        limits: dict[str, float],
        burst: int,
        link: RedisLink,
        *,
        on_redis_down: Literal["open", "closed"] = "open",
    ) -> None:
        super().__init__(limits, burst)
        self.link = link
        self.on_redis_down = on_redis_down
        self._script = link.client.register_script(TOKEN_BUCKET)

    def take(
        self, client: str, model: str, rate: float, now: float | None = None
    ) -> tuple[bool, float]:
        from redis.exceptions import RedisError

        if self.link.available():
            try:
                key = self.link.key("ratelimit", model, client)
                allowed, wait = self._script(keys=[key], args=[rate, self.burst])
            except RedisError as error:
                self.link.failed(error)
            else:
                self.link.succeeded()
                return bool(allowed), float(wait)
        if self.on_redis_down == "open":
            return True, 0.0
        raise ApiError(
            503,
            "rate_limiter_unavailable",
            "the rate limiter's Redis is unreachable and the server is configured to refuse "
            "requests then (COURSE_SERVE_RATE_LIMIT_ON_REDIS_DOWN=closed); retry shortly",
            headers={"retry-after": str(max(1, round(self.link.retry_s)))},
        )


class RedisPredictionCache:
    """The prediction cache in Redis: a hit on one worker is a hit on every other.

    Same interface as ``limits.PredictionCache`` (``key``, ``get_many``, ``put_many``,
    ``hits``, ``misses``); a Redis error makes the lookup a miss and skips the write.
    """

    key = staticmethod(PredictionCache.key)

    def __init__(self, link: RedisLink, ttl: float) -> None:
        self.link = link
        self.ttl_ms = max(1, round(ttl * 1000))
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def _name(self, key: bytes) -> str:
        return self.link.key("cache", key.hex())

    def get_many(self, keys: list[bytes], now: float) -> list[tuple[int, list[float]] | None]:
        from redis.exceptions import RedisError

        found: list[tuple[int, list[float]] | None] = [None] * len(keys)
        if self.link.available():
            try:
                values = self.link.client.mget([self._name(key) for key in keys])
            except RedisError as error:
                self.link.failed(error)
            else:
                self.link.succeeded()
                for i, value in enumerate(values):
                    if value is not None:
                        label, probabilities = orjson.loads(value)
                        found[i] = (int(label), [float(p) for p in probabilities])
        hits = sum(hit is not None for hit in found)
        with self._lock:
            self.hits += hits
            self.misses += len(keys) - hits
        return found

    def put_many(self, entries: list[tuple[bytes, int, list[float]]], now: float) -> None:
        from redis.exceptions import RedisError

        if not entries or not self.link.available():
            return
        try:
            with self.link.client.pipeline(transaction=False) as pipe:
                for key, label, probabilities in entries:
                    pipe.set(self._name(key), orjson.dumps([label, probabilities]), px=self.ttl_ms)
                pipe.execute()
        except RedisError as error:
            self.link.failed(error)
        else:
            self.link.succeeded()
