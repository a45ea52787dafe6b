"""``Managed``: ``with thing:`` starts it and always stops it (servers, containers, registries)."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self


class Managed:
    """Subclasses implement ``start() -> Self`` and ``stop()``, optionally ``close()`` (free
    what outlives a stop, e.g. a log file); this adds the ``with`` protocol."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        """Called after ``stop()`` when the ``with`` block ends."""

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            # ``__exit__`` never runs when ``__enter__`` raises: free what a half-done start
            # made (a process, a temp log, a work directory), then report the start's error.
            try:
                self.stop()
            finally:
                self.close()
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        finally:
            self.close()
