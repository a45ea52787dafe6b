"""One routing table for every worker and replica: kept in Redis, followed in the background.

With ``COURSE_SERVE_REDIS_URL`` set, an admin change made through any process (move an alias,
split traffic, promote, roll back, load or unload a version) is written to Redis under a
Redis lock, and a counter there (``<prefix>:routing-version``) goes up. Every process polls
that one key every ``routing_poll_s`` (0.25 s by default) on a background thread and, when
it moved, reads the models' routing and the admin-loaded packages and adopts them — so every
worker sees a change within a second, and no request ever waits on Redis for its routing.

Keys (``<prefix>`` is ``COURSE_SERVE_REDIS_PREFIX``, default ``course-serve``):

- ``<prefix>:routing:<model>``: JSON ``{"routing": {aliases, weights}, "history": [...]}``
- ``<prefix>:packages``: hash ``"<model>/<version>"`` → package path (``""``: unloaded)
- ``<prefix>:routing-version``: the counter; ``<prefix>:routing-lock``: the change lock

At start a process adopts what Redis holds (so admin changes outlive restarts) when it is
valid for the versions the process loaded; otherwise — first start, or a routing naming
versions this process does not serve — it writes its own (``COURSE_SERVE_ROUTING``). Redis
down: the last routing adopted stays in force, admin changes answer 503, and the poller
catches up once Redis is back.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from course_pkg.serving.errors import ApiError

if TYPE_CHECKING:
    from course_pkg.serving.observability import Metrics
    from course_pkg.serving.registry import ModelRegistry, ServedModel
    from course_pkg.serving.shared import RedisLink

LOG = logging.getLogger("course_pkg.serving.routing_sync")


def _unavailable(error: Exception) -> ApiError:
    return ApiError(
        503,
        "routing_unavailable",
        f"the shared routing table (Redis) is unreachable ({type(error).__name__}); the "
        "routing in force is unchanged — retry the change once Redis is back",
        headers={"retry-after": "1"},
    )


class RedisRoutingStore:
    """``gateway.RoutingStore`` in Redis; Redis errors become 503 ``ApiError``s."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self.version_key = link.key("routing-version")
        self.packages_key = link.key("packages")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        from redis.exceptions import LockError, RedisError

        lock = self.link.client.lock(self.link.key("routing-lock"), timeout=30, blocking_timeout=5)
        try:
            acquired = lock.acquire()
        except RedisError as error:
            self.link.failed(error)
            raise _unavailable(error) from None
        if not acquired:
            raise ApiError(
                503,
                "routing_busy",
                "another routing change is in progress; retry",
                headers={"retry-after": "1"},
            )
        try:
            yield
        finally:
            with contextlib.suppress(LockError, RedisError):
                lock.release()

    def _call(self, method: str, *args: Any) -> Any:
        from redis.exceptions import RedisError

        try:
            return getattr(self.link.client, method)(*args)
        except RedisError as error:
            self.link.failed(error)
            raise _unavailable(error) from None

    def read(self, model: str) -> dict[str, Any] | None:
        raw = self._call("get", self.link.key("routing", model))
        return None if raw is None else dict(orjson.loads(raw))

    def write(self, model: str, document: dict[str, Any]) -> None:
        from redis.exceptions import RedisError

        try:
            with self.link.client.pipeline(transaction=True) as pipe:
                pipe.set(self.link.key("routing", model), orjson.dumps(document))
                pipe.incr(self.version_key)
                pipe.execute()
        except RedisError as error:
            self.link.failed(error)
            raise _unavailable(error) from None

    def version(self) -> int:
        return int(self._call("get", self.version_key) or 0)

    def packages(self) -> dict[str, str]:
        raw = self._call("hgetall", self.packages_key)
        return {k.decode(): v.decode() for k, v in raw.items()}

    def set_package(self, name: str, version: str, path: str) -> None:
        """Announce a loaded (``path``) or unloaded (``""``) version to the other processes."""
        from redis.exceptions import RedisError

        try:
            with self.link.client.pipeline(transaction=True) as pipe:
                pipe.hset(self.packages_key, f"{name}/{version}", path)
                pipe.incr(self.version_key)
                pipe.execute()
        except RedisError as error:
            self.link.failed(error)
            raise _unavailable(error) from None


class RoutingSync:
    """Keeps this process's registry and routing in step with the store (a daemon thread)."""

    def __init__(
        self,
        registry: ModelRegistry,
        store: RedisRoutingStore,
        metrics: Metrics,
        poll_s: float = 0.25,
    ) -> None:
        self.registry = registry
        self.store = store
        self.metrics = metrics
        self.poll_s = poll_s
        self.synced = False
        self.seen: int | None = None
        # from the start, even before the first sync succeeds: an admin change then goes
        # through Redis (or answers 503), never to this process alone
        registry.routes.store = store
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="routing-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.poll_once()

    def poll_once(self) -> None:
        """One step: the first sync until it succeeds, then adopt whatever changed."""
        if not self.store.link.available():
            return
        try:
            if not self.synced:
                self._first_sync()
                self.synced = True
            version = self.store.version()
            if version != self.seen:
                self._adopt_all()
                self.seen = version
            self.store.link.succeeded()
        except ApiError:  # Redis unreachable: the link's breaker and status say so
            return
        except Exception:  # a bad package or document must not stop the poller
            LOG.exception("routing sync failed; retrying")

    def _first_sync(self) -> None:
        announced = self._announced()
        self._load_new(announced)
        routes = self.registry.routes
        with routes.lock, self.store.locked():
            for name in self.registry.names():
                document = self.store.read(name)
                if document is None or not routes.adopt(name, document):
                    if document is not None:
                        LOG.warning(
                            "routing of %s in Redis names versions not loaded here; "
                            "writing this process's routing",
                            name,
                        )
                    self.store.write(name, routes.export(name))
        self._unload_gone(announced)
        self._publish()

    def _announced(self) -> list[tuple[str, str, str]]:
        """(model, version, path) for every load or unload (path "") made via the admin API."""
        return [
            (entry.split("/", 1)[0], entry.split("/", 1)[-1], path)
            for entry, path in sorted(self.store.packages().items())
        ]

    def _load_new(self, announced: list[tuple[str, str, str]]) -> None:
        """Load the versions other processes loaded through the admin API."""
        for name, version, path in announced:
            if path and version not in self.registry.versions(name):
                try:
                    self.registry.load(Path(path))
                except Exception as error:
                    LOG.error(
                        "cannot load %s %s announced by another worker: %s", name, version, error
                    )

    def _unload_gone(self, announced: list[tuple[str, str, str]]) -> None:
        """Unload the versions other processes unloaded (after adopting the routing that
        stopped sending them traffic)."""
        for name, version, path in announced:
            if not path and version in self.registry.versions(name):
                try:
                    self.registry.unload(name, version)
                except ApiError as error:
                    LOG.warning("cannot unload %s %s: %s", name, version, error.message)

    def _adopt_all(self) -> None:
        announced = self._announced()
        self._load_new(announced)
        routes = self.registry.routes
        for name in self.registry.names():
            document = self.store.read(name)
            if document is None:
                continue
            with routes.lock:
                adopted = routes.adopt(name, document)
            if not adopted:
                LOG.warning("routing of %s in Redis names versions not loaded here", name)
        self._unload_gone(announced)
        self._publish()

    def _publish(self) -> None:
        from course_pkg.serving import admin

        for name in self.registry.names():
            admin.publish(self.registry, self.metrics, name)

    def announce(self, served: ServedModel, loaded: bool) -> None:
        """Tell the other processes that this one loaded (or unloaded) ``served``."""
        path = str(served.path.resolve()) if loaded else ""
        self.store.set_package(served.name, served.version, path)
