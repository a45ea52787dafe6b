"""Traffic routing between the loaded versions of a model: aliases, weighted A/B, rollback.

Every model has **aliases** (``stable``, ``canary``, any lower-case name) that point at loaded
versions, and optional **weights** that split the unversioned routes' traffic between aliases
or versions (``{"stable": 90, "canary": 10}``). Without weights everything goes to ``stable``,
which the registry pins to the highest version loaded at start, so loading a new version
never moves traffic by itself. ``latest`` is always the highest loaded version.

**Sticky split.** A request with an ``X-Client-Id`` header lands in a bucket
``blake2b(model, client) → [0, 100)``; the same client always gets the same version while
the weights stand. Targets that are not stable take the low end of the range and stable the
top, so ramping a canary from 10 % to 50 % moves stable clients to the canary and never the
other way. Requests without a client id are split at random, per request.

**Changes are atomic.** A ``Routing`` is immutable; a change builds a new one and swaps it in
under a lock, so a request sees either the old routing or the new one. A request that has
chosen its version holds a reference to that model, so moving traffic (or unloading a
version) never fails an in-flight request. Each change pushes the previous routing on a
history; ``rollback`` returns, in one call, to the last routing that sent all traffic to one
version (stable before the canary began; the previous stable after a promotion).

**Several processes.** The table belongs to one process unless a ``store`` is attached
(``routing_sync``, with ``COURSE_SERVE_REDIS_URL``): each change then takes the store's lock,
starts from the store's copy, and writes the result back, so a change made through any
worker is the one every worker adopts (each polls the store's version in the background;
the request path never waits on Redis).
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from course_pkg.serving.errors import ApiError

ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
STABLE = "stable"
LATEST = "latest"  # computed: the highest loaded version; cannot be set
HISTORY = 20  # routings kept per model for rollback


def bucket(model: str, client: str) -> float:
    """The client's fixed point in [0, 100) for ``model``: same inputs, same point."""
    digest = hashlib.blake2b(f"{model}\0{client}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * 100


def pick(shares: list[tuple[str, float]], point: float) -> str:
    """The target whose cumulative share covers ``point`` (shares sum to 100)."""
    total = 0.0
    for target, share in shares:
        total += share
        if point < total:
            return target
    return shares[-1][0]  # point rounding to 100.0


def _conflict(message: str) -> ApiError:
    return ApiError(409, "routing_conflict", message)


def _invalid(message: str) -> ApiError:
    return ApiError(422, "invalid_routing", message)


@dataclass(frozen=True)
class Routing:
    """One model's aliases and weights; immutable (changes make a new one)."""

    aliases: Mapping[str, str] = field(default_factory=dict)  # alias → version
    weights: Mapping[str, float] = field(default_factory=dict)  # alias or version → percent

    def resolve(self, target: str) -> str:
        """An alias's version, or ``target`` itself (a version)."""
        return self.aliases.get(target, target)

    def shares(self) -> list[tuple[str, float]]:
        """Weighted targets in routing order: not-stable first (sorted), stable last."""
        stable = self.aliases.get(STABLE)
        positive = [(t, w) for t, w in sorted(self.weights.items()) if w > 0]
        return sorted(positive, key=lambda item: self.resolve(item[0]) == stable)

    def choose(self, model: str, client: str | None) -> str:
        """The target (alias or version) that serves this request."""
        if not self.weights:  # the common case, on every unversioned request: no split
            return STABLE
        shares = self.shares()
        if not shares:
            return STABLE
        point = bucket(model, client) if client else random.random() * 100
        return pick(shares, point)

    def describe(self) -> dict[str, Any]:
        split: dict[str, float] = {}
        for target, share in self.shares() or [(STABLE, 100.0)]:
            version = self.resolve(target)
            split[version] = split.get(version, 0.0) + share
        return {"aliases": dict(self.aliases), "weights": dict(self.weights), "split": split}

    def dump(self) -> dict[str, Any]:
        return {"aliases": dict(self.aliases), "weights": dict(self.weights)}

    @classmethod
    def from_dump(cls, data: Mapping[str, Any]) -> Routing:
        return cls(dict(data.get("aliases", {})), dict(data.get("weights", {})))


class RoutingStore(Protocol):
    """Where several processes keep one routing table (``routing_sync.RedisRoutingStore``)."""

    def locked(self) -> contextlib.AbstractContextManager[None]: ...
    def read(self, model: str) -> dict[str, Any] | None: ...
    def write(self, model: str, document: dict[str, Any]) -> None: ...


class RoutingTable:
    """Routing per model, with history; ``versions(name)`` lists what is loaded."""

    def __init__(self, versions: Callable[[str], list[str]]) -> None:
        self._versions = versions
        self._routing: dict[str, Routing] = {}
        self._history: dict[str, list[Routing]] = {}
        # Held by every routing change; the registry holds it to unload a version, so no alias
        # can move onto that version between its check and the removal. Order: this lock,
        # then the registry's.
        self.lock = threading.Lock()
        self.store: RoutingStore | None = None  # shared with other processes (routing_sync)

    def export(self, model: str) -> dict[str, Any]:
        """The model's routing and history as JSON-able data (what the store keeps)."""
        history = self._history.get(model, [])
        return {"routing": self.get(model).dump(), "history": [r.dump() for r in history]}

    def adopt(self, model: str, document: Mapping[str, Any]) -> bool:
        """Make an exported routing current (caller holds ``lock``); False, changing nothing,
        when it names versions this process has not loaded."""
        new = Routing.from_dump(document["routing"])
        try:
            self._check(model, new)
        except ApiError:
            return False
        self._routing[model] = new
        self._history[model] = [Routing.from_dump(r) for r in document.get("history", [])]
        return True

    @contextlib.contextmanager
    def _changing(self, model: str) -> Iterator[None]:
        """Hold the lock for one change; with a store, start from its copy and write back."""
        with self.lock:
            if self.store is None:
                yield
                return
            with self.store.locked():
                document = self.store.read(model)
                if document is not None:
                    self.adopt(model, document)
                before = self._routing.get(model), list(self._history.get(model, []))
                try:
                    yield
                    self.store.write(model, self.export(model))
                except BaseException:  # not written: this process must not keep it either
                    routing, self._history[model] = before
                    if routing is None:
                        self._routing.pop(model, None)
                    else:
                        self._routing[model] = routing
                    raise

    def get(self, model: str) -> Routing:
        return self._routing.get(model, Routing())  # one dict read: atomic under the GIL

    def start(self, model: str, version: str) -> None:
        """Pin ``stable`` for a model seen for the first time (no-op afterwards)."""
        with self.lock:
            self._routing.setdefault(model, Routing(aliases={STABLE: version}))

    def history(self, model: str) -> int:
        return len(self._history.get(model, []))

    def configure(
        self, model: str, aliases: Mapping[str, str], weights: Mapping[str, float]
    ) -> None:
        """Set the routing a server starts with (``COURSE_SERVE_ROUTING``); not undoable."""
        with self.lock:
            self._swap(model, Routing({**self.get(model).aliases, **aliases}, dict(weights)))
            self._history.pop(model, None)

    def _swap(self, model: str, new: Routing) -> Routing:
        """Check ``new`` against the loaded versions, then make it current (caller holds lock)."""
        self._check(model, new)
        old = self.get(model)
        history = self._history.setdefault(model, [])
        history.append(old)
        del history[:-HISTORY]
        self._routing[model] = new
        return new

    def _check(self, model: str, new: Routing) -> None:
        """422 ``ApiError`` unless ``new`` is valid against the loaded versions."""
        loaded = set(self._versions(model))
        for alias, version in new.aliases.items():
            if not ALIAS.match(alias) or alias == LATEST:
                raise _invalid(
                    f"alias {alias!r}: use 1-32 lower-case letters, digits, '-' or '_', "
                    f"starting with a letter ('{LATEST}' is reserved)"
                )
            if version not in loaded:
                raise _invalid(
                    f"alias {alias!r} → {version!r}: not a loaded version of {model} "
                    f"(loaded: {', '.join(sorted(loaded)) or 'none'})"
                )
        if STABLE not in new.aliases:
            raise _invalid(f"{model} must keep a '{STABLE}' alias: unversioned requests use it")
        for target, share in new.weights.items():
            if new.resolve(target) not in loaded:
                raise _invalid(f"weight for {target!r}: neither an alias nor a loaded version")
            if not 0 <= share <= 100:
                raise _invalid(f"weight for {target!r} is {share}; use 0 to 100")
        if new.weights and abs(sum(new.weights.values()) - 100) > 1e-6:
            raise _invalid(f"weights sum to {sum(new.weights.values()):g}; they must sum to 100")

    def set_alias(self, model: str, alias: str, version: str) -> Routing:
        with self._changing(model):
            old = self.get(model)
            return self._swap(model, Routing({**old.aliases, alias: version}, old.weights))

    def remove_alias(self, model: str, alias: str) -> Routing:
        with self._changing(model):
            old = self.get(model)
            if alias not in old.aliases:
                raise ApiError(404, "not_found", f"{model} has no alias {alias!r}")
            if alias in old.weights:
                raise _conflict(f"alias {alias!r} carries traffic; set its weight to 0 first")
            aliases = {a: v for a, v in old.aliases.items() if a != alias}
            return self._swap(model, Routing(aliases, old.weights))

    def set_weights(self, model: str, weights: Mapping[str, float]) -> Routing:
        with self._changing(model):
            old = self.get(model)
            return self._swap(model, Routing(old.aliases, dict(weights)))

    def promote(self, model: str, alias: str) -> Routing:
        """``stable`` takes ``alias``'s version and the split ends: the canary has won."""
        with self._changing(model):
            old = self.get(model)
            if alias not in old.aliases:
                raise ApiError(404, "not_found", f"{model} has no alias {alias!r}")
            return self._swap(model, Routing({**old.aliases, STABLE: old.aliases[alias]}, {}))

    def rollback(self, model: str) -> Routing:
        """All traffic back where it was before the latest rollout, in one step.

        Restores the most recent earlier routing that sent every unversioned request to one
        version, and a different split from now: during a canary, that is stable alone
        (whatever the weights or alias moves since); after a promotion, the previous stable.
        """
        with self._changing(model):
            history = self._history.get(model, [])
            current = self.get(model).describe()["split"]
            for index in range(len(history) - 1, -1, -1):
                split = history[index].describe()["split"]
                if len(split) == 1 and split != current:
                    break
            else:
                raise _conflict(
                    f"{model}: nothing to roll back to (no earlier routing sent all traffic "
                    "to another version)"
                )
            previous = history[index]
            loaded = set(self._versions(model))
            needed = {previous.resolve(t) for t in [*previous.aliases, *previous.weights]}
            if not needed <= loaded:
                gone = ", ".join(sorted(needed - loaded))
                raise _conflict(f"{model}: cannot roll back: version(s) {gone} were unloaded")
            del history[index:]
            self._routing[model] = previous
            return previous

    def references(self, model: str, version: str) -> list[str]:
        """Aliases and weights that point at ``version`` (it must not be unloaded)."""
        routing = self.get(model)
        used = [a for a, v in routing.aliases.items() if v == version]
        used += [t for t, w in routing.weights.items() if w > 0 and routing.resolve(t) == version]
        return sorted(set(used))
