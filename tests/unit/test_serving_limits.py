"""Rate limiting (token buckets, 429 + headers) and the prediction cache, in-process."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from course_pkg.serving import ServerSettings, create_app
from course_pkg.serving.limits import PredictionCache, RateLimiter, TokenBucket, canonical_row
from course_pkg.training import train_churn


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return list(json.loads(train_churn().x_test.head(20).to_json(orient="records")))


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, tokens=3.0, updated=0.0)
    assert [bucket.take(0.0)[0] for _ in range(4)] == [True, True, True, False]
    allowed, wait = bucket.take(0.0)
    assert not allowed and wait == pytest.approx(0.5)
    assert bucket.take(0.5)[0] and not bucket.take(0.5)[0]  # one token per 1/rate seconds
    assert bucket.take(10.0)[0] and bucket.tokens == pytest.approx(2.0)  # capped at burst


def test_rate_limiter_is_per_client_and_per_model() -> None:
    limiter = RateLimiter({"churn": 1.0}, burst=1)
    limiter.check("a", "churn", now=0.0)
    with pytest.raises(Exception, match="rate limit for churn") as caught:
        limiter.check("a", "churn", now=0.1)
    assert caught.value.status == 429 and caught.value.headers["retry-after"] == "1"  # type: ignore[attr-defined]
    limiter.check("b", "churn", now=0.1)  # another client has its own bucket
    for _ in range(5):
        limiter.check("a", "digits", now=0.1)  # no limit configured for digits
    small = RateLimiter({"*": 1.0}, burst=1, max_clients=2)
    for client in "xyz":
        small.check(client, "m", now=0.0)
    assert len(small.buckets) == 2  # bounded memory: least recently seen client dropped


@pytest.fixture(scope="module")
def limited(model_packages: dict[str, Path]) -> Iterator[TestClient]:
    settings = ServerSettings(background_load=False, rate_limits={"churn": 0.5}, rate_limit_burst=2)
    app = create_app([model_packages["churn"], model_packages["digits"]], settings)
    with TestClient(app) as client:
        yield client


def test_over_the_limit_is_429_with_headers(
    limited: TestClient, rows: list[dict[str, Any]]
) -> None:
    body = {"records": rows[:1]}
    key = {"x-api-key": "team-a"}
    codes = [limited.post("/v1/models/churn/predict", json=body, headers=key) for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    refused = codes[2]
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.headers["retry-after"] == "2"
    assert (
        refused.headers["ratelimit-limit"] == "2" and refused.headers["ratelimit-remaining"] == "0"
    )
    other = limited.post("/v1/models/churn/predict", json=body, headers={"x-api-key": "team-b"})
    assert other.status_code == 200  # its own bucket
    columns = list(rows[0])
    mlflow = limited.post(
        "/invocations",
        json={"dataframe_split": {"columns": columns, "data": [list(rows[0].values())]}},
        headers=key,
    )
    assert mlflow.status_code == 429 and mlflow.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert mlflow.headers["retry-after"] == "2"  # kept by the protocol's error shape
    # 0.5 token/s: a token is back 2 s after the burst was spent (slow enough that a loaded
    # machine's pauses between the requests above cannot refill the bucket early)
    time.sleep(2.1)
    assert limited.post("/v1/models/churn/predict", json=body, headers=key).status_code == 200
    metrics = limited.get("/metrics").text
    assert 'code="rate_limited"' in metrics


@pytest.fixture(scope="module")
def cached(model_packages: dict[str, Path]) -> Iterator[TestClient]:
    settings = ServerSettings(background_load=False, cache_size=100, cache_ttl_s=0.5)
    app = create_app([model_packages["churn"], model_packages["churn_v2"]], settings)
    with TestClient(app) as client:
        yield client


def test_cache_hits_same_rows_and_answers_the_same(
    cached: TestClient, rows: list[dict[str, Any]]
) -> None:
    url = "/v1/models/churn/versions/1.0.0/predict"
    first = cached.post(url, json={"records": rows[:5]}).json()["predictions"]
    # the same rows with their keys in another order: the same cache entries
    reordered = [dict(reversed(list(row.items()))) for row in rows[:5]]
    again = cached.post(url, json={"records": reordered}).json()["predictions"]
    assert again == first
    text = cached.get("/metrics").text
    hits = [line for line in text.splitlines() if line.startswith("course_prediction_cache_total")]
    assert any('result="hit"' in line and line.endswith(" 5.0") for line in hits), hits
    other_version = cached.post(
        "/v1/models/churn/versions/1.1.0/predict", json={"records": rows[:5]}
    ).json()
    assert other_version["version"] == "1.1.0"  # a different model version never reuses entries
    time.sleep(0.6)  # past the TTL: recomputed, same answer
    assert cached.post(url, json={"records": rows[:5]}).json()["predictions"] == first


def test_cache_keys_are_canonical() -> None:
    assert canonical_row({"a": 1, "b": "x"}) == canonical_row({"b": "x", "a": 1.0})
    assert canonical_row({"a": 1.5}) != canonical_row({"a": 1})
    cache = PredictionCache(size=2, ttl=10)
    keys = [PredictionCache.key("m:1", {"a": i}) for i in range(3)]
    for i, key in enumerate(keys):
        cache.put(key, i, [0.5, 0.5], now=0.0)
    assert cache.get(keys[0], now=1.0) is None  # evicted (LRU, size 2)
    assert cache.get(keys[2], now=1.0) == (2, [0.5, 0.5])
    assert cache.get(keys[2], now=20.0) is None  # expired
    assert PredictionCache.key("m:1", {"a": 1}) != PredictionCache.key("m:2", {"a": 1})


def test_cached_and_uncached_predictions_agree(
    cached: TestClient, model_packages: dict[str, Path], rows: list[dict[str, Any]]
) -> None:
    from course_pkg.onnx_export import OnnxPredictor

    predictor = OnnxPredictor.from_package(model_packages["churn"])
    direct = predictor.predict_proba(rows)
    answer = cached.post("/v1/models/churn/versions/1.0.0/predict", json={"records": rows}).json()[
        "predictions"
    ]
    got = np.array([[p["probabilities"]["0"], p["probabilities"]["1"]] for p in answer])
    assert np.array_equal(got.astype(np.float32), direct)


def test_several_workers_never_multiply_a_rate_limit_silently() -> None:
    with pytest.raises(ValueError, match=r"would allow 2x each limit.*COURSE_SERVE_REDIS_URL"):
        ServerSettings(workers=2, rate_limits={"churn": 50})
    ServerSettings(workers=1, rate_limits={"churn": 50})  # one process: the limit is exact
    shared = ServerSettings(workers=2, rate_limits={"churn": 50}, redis_url="redis://127.0.0.1/0")
    assert shared.rate_limits == {"churn": 50}  # Redis: one bucket for every worker
    with pytest.raises(ValueError, match="COURSE_SERVE_REDIS_URL"):
        ServerSettings(workers=2, admin_token="a-long-enough-admin-token")
    ServerSettings(workers=2, admin_token="a-long-enough-admin-token", redis_url="redis://h/0")


def test_port_comes_from_the_platform_unless_ours_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COURSE_SERVE_PORT", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    assert ServerSettings().port == 8000
    monkeypatch.setenv("PORT", "8080")  # Cloud Run, Spaces, Heroku
    assert ServerSettings().port == 8080
    assert ServerSettings(port=9000).port == 9000  # --port wins
    monkeypatch.setenv("COURSE_SERVE_PORT", "7000")
    assert ServerSettings().port == 7000  # ours wins over the platform's
    monkeypatch.setenv("COURSE_SERVE_PORT", "")
    monkeypatch.setenv("PORT", "not-a-port")
    with pytest.raises(ValueError, match="port"):
        ServerSettings()


def test_redis_down_the_limiter_fails_open_or_closed_and_the_cache_misses() -> None:
    from course_pkg.serving.errors import ApiError
    from course_pkg.serving.process import free_port
    from course_pkg.serving.shared import RedisLink, RedisPredictionCache, RedisRateLimiter

    link = RedisLink(f"redis://127.0.0.1:{free_port()}/0", "t")  # nothing listens there
    RedisRateLimiter({"churn": 1.0}, 1, link, on_redis_down="open").check("a", "churn")
    assert link.status()["redis"] == "unreachable" and "Connection" in link.status()["error"]
    assert not link.available()  # the breaker: no request waits on a dead Redis for 1 s
    closed = RedisRateLimiter({"churn": 1.0}, 1, link, on_redis_down="closed")
    with pytest.raises(ApiError) as caught:
        closed.check("a", "churn")
    assert caught.value.status == 503 and caught.value.code == "rate_limiter_unavailable"
    cache = RedisPredictionCache(link, ttl=10)
    assert cache.get_many([b"k1", b"k2"], now=0.0) == [None, None] and cache.misses == 2
    cache.put_many([(b"k1", 1, [0.5, 0.5])], now=0.0)  # skipped, no error
