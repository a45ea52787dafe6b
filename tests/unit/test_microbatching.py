"""Micro-batching: the batcher alone, then a server with it on (in-process, concurrent)."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from course_pkg.serving import ServerSettings, create_app
from course_pkg.serving.batching import MicroBatcher
from course_pkg.serving.registry import ModelRegistry
from course_pkg.training import train_churn


class Recorder:
    """A fake model: label = row["x"], probabilities = [x, -x]; records each call's size."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.threads: set[str] = set()
        self.fail = fail

    def __call__(self, rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append(len(rows))
        self.threads.add(threading.current_thread().name)
        if self.fail:
            raise ValueError("model exploded")
        x = np.array([row["x"] for row in rows], dtype=np.float64)
        return x.astype(np.int64), np.stack([x, -x], axis=1)


def rows_of(*values: int) -> list[dict[str, Any]]:
    return [{"x": v} for v in values]


def test_concurrent_requests_share_one_call_and_get_their_own_rows() -> None:
    model = Recorder()
    batcher = MicroBatcher(max_rows=100, max_wait_s=0.05)

    async def main() -> list[Any]:
        requests = [rows_of(i) for i in range(10)] + [rows_of(100, 101, 102)]
        return await asyncio.gather(*(batcher.predict("m", r, model) for r in requests))

    answers = asyncio.run(main())
    assert model.calls == [13]  # 11 requests, 13 rows, one model call
    assert [a[0].tolist() for a in answers[:10]] == [[i] for i in range(10)]
    assert answers[10][0].tolist() == [100, 101, 102]
    assert answers[10][1][:, 1].tolist() == [-100, -101, -102]
    assert model.threads == {"microbatch_0"}  # off the event loop, on the batcher's thread
    batcher.close()


def test_a_full_batch_goes_at_once_and_keys_batch_separately() -> None:
    model = Recorder()
    batcher = MicroBatcher(max_rows=4, max_wait_s=10.0)  # only size can send these in time

    async def main() -> None:
        await asyncio.wait_for(
            asyncio.gather(*(batcher.predict("a", rows_of(i), model) for i in range(8))), 5
        )
        both = [batcher.predict(key, rows_of(1, 2), model) for key in ("a", "b")]
        both += [batcher.predict(key, rows_of(3, 4), model) for key in ("a", "b")]
        await asyncio.wait_for(asyncio.gather(*both), 5)

    asyncio.run(main())
    assert model.calls == [4, 4, 4, 4]
    batcher.close()


def test_the_wait_bounds_latency_when_traffic_is_thin() -> None:
    model = Recorder()
    batcher = MicroBatcher(max_rows=64, max_wait_s=0.02)

    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await batcher.predict("m", rows_of(7), model)
        return loop.time() - start

    waited = asyncio.run(main())
    assert model.calls == [1]
    assert 0.015 <= waited < 1.0
    batcher.close()


def test_a_failing_batch_fails_every_request_in_it_and_not_the_next() -> None:
    broken, fine = Recorder(fail=True), Recorder()
    batcher = MicroBatcher(max_rows=10, max_wait_s=0.01)

    async def main() -> list[Any]:
        first = await asyncio.gather(
            *(batcher.predict("m", rows_of(i), broken) for i in range(3)), return_exceptions=True
        )
        second = await batcher.predict("m", rows_of(5), fine)
        return [*first, second]

    *errors, ok = asyncio.run(main())
    assert all(isinstance(e, ValueError) and "exploded" in str(e) for e in errors)
    assert ok[0].tolist() == [5]
    batcher.close()


def test_a_cancelled_request_does_not_shift_the_others() -> None:
    model = Recorder()
    batcher = MicroBatcher(max_rows=10, max_wait_s=0.05)

    async def main() -> list[Any]:
        tasks = [asyncio.create_task(batcher.predict("m", rows_of(i), model)) for i in range(3)]
        await asyncio.sleep(0)
        tasks[1].cancel()  # a client that went away while waiting
        return await asyncio.gather(*tasks, return_exceptions=True)

    first, cancelled, third = asyncio.run(main())
    assert isinstance(cancelled, asyncio.CancelledError)
    assert first[0].tolist() == [0] and third[0].tolist() == [2]
    batcher.close()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        MicroBatcher(max_rows=1, max_wait_s=0.01)
    with pytest.raises(ValueError, match="batches nothing"):
        ServerSettings(batch_max_rows=1)


def test_server_with_micro_batching_answers_like_one_without(
    model_packages: dict[str, Path],
) -> None:
    rows = list(json.loads(train_churn().x_test.head(40).to_json(orient="records")))
    registry = ModelRegistry([model_packages["churn"]])
    registry.load_all()
    batched = create_app(registry, ServerSettings(batch_max_rows=32, batch_max_wait_ms=20))
    plain = create_app(registry, ServerSettings())

    async def post_all(app: Any) -> tuple[list[Any], str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            native = [
                client.post("/v1/models/churn/predict", json={"records": [row]}) for row in rows
            ]
            mlflow = client.post("/invocations", json={"dataframe_records": rows[:3]})
            answers = await asyncio.gather(*native, mlflow)
            metrics = (await client.get("/metrics")).text
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        return [a.json()["predictions"] for a in answers], metrics

    got, metrics = asyncio.run(post_all(batched))
    expected, _ = asyncio.run(post_all(plain))
    # Same labels; probabilities equal to float32 rounding: onnxruntime's kernels take other
    # code paths for a 32-row batch than for one row (not batch-invariant in the last ulp).
    flat = [p for answer in got for p in answer]
    flat_expected = [p for answer in expected for p in answer]
    assert [p["label"] if isinstance(p, dict) else p for p in flat] == [
        p["label"] if isinstance(p, dict) else p for p in flat_expected
    ]
    probabilities = [list(p["probabilities"].values()) for p in flat if isinstance(p, dict)]
    probabilities_expected = [
        list(p["probabilities"].values()) for p in flat_expected if isinstance(p, dict)
    ]
    np.testing.assert_allclose(probabilities, probabilities_expected, rtol=0, atol=1e-6)
    count = next(
        line for line in metrics.splitlines() if line.startswith("course_microbatch_rows_count")
    )
    calls = float(count.rsplit(" ", 1)[1])
    assert 2 <= calls < 20, count  # 43 rows in 41 requests, batches of up to 32 rows
    assert batched.state.batcher.batched_rows == 43
