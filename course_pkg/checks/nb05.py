"""Self-checks for notebook 05 (batch vs real time), and the pieces the grader reuses.

Expected values come from the course's own implementations (``course_pkg.serving.limits``'s
token bucket, numpy's nearest-rank percentile), never from copies of the solutions.
"""

from __future__ import annotations

import math
import tempfile
import tracemalloc
from functools import cache
from pathlib import Path
from typing import Any

from course_pkg.checks._registry import CheckFailed, callable_answer, expect, register

SCORER_ROWS = 100_000  # big enough that a whole-file read dwarfs a chunk's buffers
SCORER_CHUNK = 2_000


# --- 1 · a chunked scorer --------------------------------------------------------------------


@cache
def fraud_package() -> Path:
    from course_pkg.training import package_fraud

    path: Path = package_fraud(Path(tempfile.mkdtemp(prefix="nb05-check-")) / "fraud").path
    return path


@cache
def transactions_csv(rows: int = SCORER_ROWS) -> Path:
    from course_pkg.datasets.transactions import write_transactions

    path = Path(tempfile.mkdtemp(prefix="nb05-data-")) / f"transactions-{rows}.csv"
    return write_transactions(path, rows)


class CountingPredictor:
    """Wraps the real predictor and records how many rows each call gets."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor
        self.calls: list[int] = []

    def predict_both(self, frame: Any, **options: Any) -> Any:
        self.calls.append(len(frame))
        return self.predictor.predict_both(frame, **options)


def _peak_bytes(fn: Any, *args: Any) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = fn(*args)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@cache
def whole_file_peak() -> int:
    """Peak traced memory of reading the check file at once (chunked readers stay ~1.5 MB)."""
    import pandas as pd

    return _peak_bytes(pd.read_csv, transactions_csv())[1]


def probe_scorer(score_in_chunks: Any) -> dict[str, Any]:
    """Run the student's scorer on the check file; what the check and the grader compare."""
    import pandas as pd

    from course_pkg.onnx_export import OnnxPredictor

    source = transactions_csv()
    predictor = OnnxPredictor.from_package(fraud_package())
    counting = CountingPredictor(predictor)
    out = Path(tempfile.mkdtemp(prefix="nb05-out-")) / "scored.csv"
    returned, peak = _peak_bytes(score_in_chunks, counting, source, out, SCORER_CHUNK)
    result: dict[str, Any] = {
        "returned": returned,
        "max_rows_per_call": max(counting.calls, default=0),
        "calls": len(counting.calls),
        "memory_ratio": round(peak / whole_file_peak(), 3),
    }
    try:
        scored = pd.read_csv(out)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        result["output_error"] = f"{type(error).__name__}: {error}"
        return result
    full = pd.read_csv(source)
    result["rows_written"] = len(scored)
    result["columns_kept"] = list(scored.columns[: len(full.columns)]) == list(full.columns)
    result["labels_right"] = result["probabilities_right"] = False
    if len(scored) == len(full) and {"prediction", "probability"} <= set(scored.columns):
        labels, proba = predictor.predict_both(full)
        result["labels_right"] = bool((scored["prediction"].to_numpy() == labels).all())
        difference = abs(pd.to_numeric(scored["probability"], errors="coerce") - proba[:, 1])
        result["probabilities_right"] = bool((difference < 1e-6).all())
    return result


def scorer_verdicts(result: dict[str, Any]) -> dict[str, bool]:
    """The probe's findings as pass/fail per property (what the grader scores)."""
    readable = "output_error" not in result
    return {
        "output_readable": readable,
        "one_line_per_row": readable and result["rows_written"] == SCORER_ROWS,
        "returns_row_count": result["returned"] == SCORER_ROWS,
        "model_calls_chunked": 0 < result["max_rows_per_call"] <= SCORER_CHUNK,
        "memory_flat": result["memory_ratio"] < 0.5,
        "input_columns_kept": readable and bool(result["columns_kept"]),
        "predictions_right": readable
        and bool(result["labels_right"] and result["probabilities_right"]),
    }


SCORER_HINTS = {
    "output_readable": "write a CSV file at out_path (pd.read_csv could not read it)",
    "one_line_per_row": "one header line, then one line per input row: write the header with "
    "the first chunk only (to_csv(..., header=i == 0))",
    "returns_row_count": "return the number of rows scored (an int)",
    "model_calls_chunked": f"with chunk_rows={SCORER_CHUNK:,}, no model call may get more rows",
    "memory_flat": "read the file in chunks (pd.read_csv(..., chunksize=chunk_rows)) instead "
    "of all at once, and write each chunk before reading the next",
    "input_columns_kept": "keep the input's columns first, in order",
    "predictions_right": "append `prediction` (the label) and `probability` (of class 1) "
    "from predict_both",
}


@register(
    "05.chunked_scorer",
    forbidden=("course_pkg.batch.reading.read_chunks", "course_pkg.batch.reading.read_tables"),
)
def _chunked_scorer(answer: Any) -> str:
    result = probe_scorer(callable_answer(answer, "score_in_chunks"))
    for name, ok in scorer_verdicts(result).items():
        detail = ""
        if name == "output_readable":
            detail = f" ({result.get('output_error')})"
        elif name == "one_line_per_row":
            detail = f" (got {result['rows_written']:,} lines for {SCORER_ROWS:,} rows)"
        elif name == "model_calls_chunked":
            detail = f" (the largest call got {result['max_rows_per_call']:,})"
        elif name == "memory_flat":
            detail = f" (peak memory was {result['memory_ratio']:.0%} of a whole-file read)"
        expect(ok, SCORER_HINTS[name] + detail)
    return (
        f"{SCORER_ROWS:,} rows in {result['calls']} calls of ≤{SCORER_CHUNK:,}; peak memory "
        "under half of a whole-file read"  # the measured share varies run to run
    )


# --- 2 · a token bucket -----------------------------------------------------------------------

# (rate per second, burst, request times): a burst, a refill, a long idle, fractional waits.
# No time lands a bucket on exactly 1.0 token, so float rounding cannot decide a case.
BUCKET_CASES: list[tuple[float, int, list[float]]] = [
    (1.0, 3, [0.0, 0.0, 0.0, 0.0, 0.5, 1.1, 1.1, 2.5, 10.0, 10.0, 10.0, 10.0]),
    (10.0, 1, [0.0, 0.05, 0.12, 0.13, 0.26, 0.3, 0.31, 0.45]),
    (0.5, 2, [0.0, 1.0, 1.9, 2.2, 3.0, 4.1, 100.0, 100.0, 100.0]),
]


def bucket_expected() -> list[list[bool]]:
    from course_pkg.serving.limits import TokenBucket as Reference

    answers = []
    for rate, burst, times in BUCKET_CASES:
        bucket = Reference(rate=rate, burst=burst, tokens=float(burst), updated=times[0])
        answers.append([bucket.take(t)[0] for t in times])
    return answers


def probe_bucket(bucket_class: Any) -> list[list[bool]]:
    answers = []
    for rate, burst, times in BUCKET_CASES:
        bucket = bucket_class(rate, burst, now=times[0])
        answers.append([bool(bucket.allow(t)) for t in times])
    return answers


def flat(nested: list[list[bool]]) -> list[bool]:
    return [value for inner in nested for value in inner]


@register("05.token_bucket", forbidden=("course_pkg.serving.limits.TokenBucket",))
def _token_bucket(answer: Any) -> str:
    expect(isinstance(answer, type), "pass the class itself: check(..., TokenBucket)")
    got, want = probe_bucket(answer), bucket_expected()
    for (rate, burst, times), g, w in zip(BUCKET_CASES, got, want, strict=True):
        for t, allowed, should in zip(times, g, w, strict=True):
            if allowed != should:
                raise CheckFailed(
                    f"rate={rate}/s, burst={burst}: the request at t={t} was "
                    f"{'allowed' if allowed else 'refused'}; it should be "
                    f"{'allowed' if should else 'refused'} (refill rate × elapsed time, "
                    "never above burst; spend one token per request)"
                )
    return "bursts, refills and the cap after a long idle all behave"


# --- 3 · cache keys ---------------------------------------------------------------------------

ROW = {"amount": 12.0, "merchant_category": "grocery", "hour": 9, "card_present": 1}
# (description, (model, version, row) a, b, should the keys be equal)
KEY_CASES: list[tuple[str, tuple[Any, ...], tuple[Any, ...], bool]] = [
    ("the same row", ("fraud", "1.0.0", ROW), ("fraud", "1.0.0", dict(ROW)), True),
    (
        "the same row with its keys in another order",
        ("fraud", "1.0.0", ROW),
        ("fraud", "1.0.0", dict(reversed(list(ROW.items())))),
        True,
    ),
    (
        "12.0 and 12 (JSON clients send either)",
        ("fraud", "1.0.0", ROW),
        ("fraud", "1.0.0", {**ROW, "amount": 12}),
        True,
    ),
    ("another value", ("fraud", "1.0.0", ROW), ("fraud", "1.0.0", {**ROW, "hour": 10}), False),
    (
        "a number and the same digits as a string",
        ("fraud", "1.0.0", ROW),
        ("fraud", "1.0.0", {**ROW, "hour": "9"}),
        False,
    ),
    ("another model version", ("fraud", "1.0.0", ROW), ("fraud", "1.1.0", ROW), False),
    ("another model", ("fraud", "1.0.0", ROW), ("churn", "1.0.0", ROW), False),
    (
        "values that could run together ('ab'+'c' vs 'a'+'bc')",
        ("m", "1", {"x": "ab", "y": "c"}),
        ("m", "1", {"x": "a", "y": "bc"}),
        False,
    ),
]


def probe_cache_key(cache_key: Any) -> list[bool]:
    results = []
    for _, a, b, _ in KEY_CASES:
        key_a, key_b = cache_key(*a), cache_key(*b)
        if not isinstance(key_a, (str, bytes)):
            raise CheckFailed("return the key as a str (or bytes) so it can index a dict")
        results.append(key_a == key_b)
    return results


@register(
    "05.cache_key",
    forbidden=(
        "course_pkg.serving.limits.PredictionCache.key",
        "course_pkg.serving.limits.canonical_row",
    ),
)
def _cache_key(answer: Any) -> str:
    got = probe_cache_key(callable_answer(answer, "cache_key"))
    for (label, _, _, want), same in zip(KEY_CASES, got, strict=True):
        if same != want:
            raise CheckFailed(
                f"{label}: your keys are {'equal' if same else 'different'}; they should be "
                f"{'equal' if want else 'different'}"
            )
    return "canonical (order, 12 vs 12.0), and model and version are part of the key"


# --- 4 · percentiles --------------------------------------------------------------------------


def _latencies() -> list[list[float]]:
    import numpy as np

    rng = np.random.default_rng(5)
    return [
        [float(v) for v in rng.lognormal(1.0, 0.5, 1000)],  # a typical latency shape
        [3.0, 1.0, 2.0, 5.0, 4.0, 9.0, 8.0, 7.0, 6.0, 10.0],  # unsorted, ten values
        [1.0] * 98 + [250.0, 900.0],  # a fast median hiding a slow tail
        [42.0],
    ]


def percentiles_expected() -> list[dict[str, float]]:
    import numpy as np

    return [
        {f"p{q}": float(np.percentile(values, q, method="inverted_cdf")) for q in (50, 95, 99)}
        for values in _latencies()
    ]


def probe_percentiles(latency_percentiles: Any) -> list[Any]:
    answers = []
    for values in _latencies():
        copy = list(values)
        got = latency_percentiles(copy)
        if copy != values:
            raise CheckFailed("do not sort the caller's list in place: sort a copy")
        answers.append({k: float(got[k]) for k in ("p50", "p95", "p99")})
    return answers


@register("05.percentiles", forbidden=("course_pkg.loadtest.LoadResult.percentile",))
def _percentiles(answer: Any) -> str:
    got = probe_percentiles(callable_answer(answer, "latency_percentiles"))
    for values, g, w in zip(_latencies(), got, percentiles_expected(), strict=True):
        for key in ("p50", "p95", "p99"):
            if not math.isclose(g[key], w[key], rel_tol=1e-9):
                raise CheckFailed(
                    f"{key} of {len(values)} latencies: got {g[key]:g}; nearest rank is the "
                    f"value at position ceil(q/100 × n) of the sorted list (1-based)"
                )
    return "nearest-rank p50/p95/p99 right, including the slow tail and n = 1"
