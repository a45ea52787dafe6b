"""Micro-batching: small requests that arrive close together are predicted in one model call.

A model call has a fixed cost (graph dispatch, reading the weights once, on a GPU the kernel
launch) and a per-row cost. When the fixed cost dominates — a wide neural network, an
accelerator — predicting 64 one-row requests as one 64-row batch is much cheaper than 64
calls. The price is latency: a request may wait up to ``max_wait_s`` for others to join.

    batcher = MicroBatcher(max_rows=64, max_wait_s=0.002)
    labels, proba = await batcher.predict(served, rows, predict)   # inside a request handler

Requests are grouped per model version, and the batch size adapts to the load (the policy
of Clipper and BentoML's adaptive batching): while the model is busy with one batch, new
requests queue and go together as soon as it is free; when the model is idle, a request waits
at most ``max_wait_s`` for company (0: it goes at the next turn of the event loop, with
whatever arrived alongside it). A batch never exceeds ``max_rows`` rows unless one request
alone is bigger. Under light load requests pay almost nothing; under heavy load batches grow.
Batches run on one dedicated thread, so the event loop keeps reading (and batching) new
requests while the model works; onnxruntime releases the GIL, so on two cores they overlap.

Nothing here is specific to HTTP: ``predict`` is any function of a list of rows that returns
``(labels, probabilities)`` arrays with one entry per row.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Rows = list[dict[str, Any]]
Predict = Callable[[Rows], tuple[np.ndarray, np.ndarray]]


@dataclass
class _Batch:
    predict: Predict
    parts: list[tuple[Rows, asyncio.Future[tuple[np.ndarray, np.ndarray]]]] = field(
        default_factory=list
    )
    rows: int = 0
    timer: asyncio.TimerHandle | asyncio.Handle | None = None


class MicroBatcher:
    """Collects requests per model for up to ``max_wait_s`` or ``max_rows`` rows."""

    def __init__(self, max_rows: int, max_wait_s: float) -> None:
        if max_rows < 2:
            raise ValueError(f"max_rows must be at least 2 to batch anything (got {max_rows})")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s cannot be negative (got {max_wait_s})")
        self.max_rows = max_rows
        self.max_wait_s = max_wait_s
        self._pending: dict[Any, _Batch] = {}
        self._running: Counter[Any] = Counter()  # batches sent and not finished, per key
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="microbatch")
        self.batches = 0  # model calls made
        self.batched_rows = 0

    async def predict(
        self, key: Any, rows: Rows, predict: Predict
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predict ``rows`` as part of the next batch for ``key`` (e.g. name and version).

        Every request with the same ``key`` must use an equivalent ``predict``: the batch
        runs the first one's.
        """
        if not rows:
            raise ValueError("no rows to predict")
        loop = asyncio.get_running_loop()
        batch = self._pending.get(key)
        if batch is not None and batch.rows + len(rows) > self.max_rows:
            self._send(key)  # full: it goes (or queues behind the running one)
            batch = None
        if batch is None:
            batch = self._pending[key] = _Batch(predict)
            if not self._running[key]:
                batch.timer = (
                    loop.call_later(self.max_wait_s, self._send, key)
                    if self.max_wait_s
                    else loop.call_soon(self._send, key)
                )
        future: asyncio.Future[tuple[np.ndarray, np.ndarray]] = loop.create_future()
        batch.parts.append((rows, future))
        batch.rows += len(rows)
        if batch.rows >= self.max_rows:
            self._send(key)
        return await future

    def _send(self, key: Any) -> None:
        batch = self._pending.pop(key, None)
        if batch is None:
            return
        if batch.timer is not None:
            batch.timer.cancel()
        self.batches += 1
        self.batched_rows += batch.rows
        self._running[key] += 1
        rows = [row for part, _ in batch.parts for row in part]
        done = asyncio.get_running_loop().run_in_executor(self._executor, batch.predict, rows)
        done.add_done_callback(lambda result: self._finished(key, batch, result))

    def _finished(
        self, key: Any, batch: _Batch, result: asyncio.Future[tuple[np.ndarray, np.ndarray]]
    ) -> None:
        _deliver(batch, result)
        self._running[key] -= 1
        if (
            not self._running[key] and key in self._pending
        ):  # what queued while the model was busy goes now
            self._send(key)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def _deliver(batch: _Batch, result: asyncio.Future[tuple[np.ndarray, np.ndarray]]) -> None:
    """Hand each request its slice of the batch's answer (or the batch's error)."""
    error = (
        RuntimeError("the server stopped before this batch ran")
        if result.cancelled()
        else result.exception()
    )
    start = 0
    for part, future in batch.parts:
        if future.done():  # the client went away and the handler was cancelled
            start += len(part)
            continue
        if error is not None:
            future.set_exception(error)
            continue
        labels, proba = result.result()
        future.set_result((labels[start : start + len(part)], proba[start : start + len(part)]))
        start += len(part)
