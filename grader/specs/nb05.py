"""Hidden grading spec for notebook 05 (batch vs real time)."""

from __future__ import annotations

import contextlib
import math
from typing import Any

from grader.specs.model import Assignment, Outcome, Question, all_true, fraction_equal

SCORER_PROBE = """
def probe():
    from course_pkg.checks.nb05 import probe_scorer, scorer_verdicts
    return scorer_verdicts(probe_scorer(score_in_chunks))
"""

BUCKET_PROBE = """
def probe():
    from course_pkg.checks.nb05 import flat, probe_bucket
    return flat(probe_bucket(TokenBucket))
"""

CACHE_KEY_PROBE = """
def probe():
    from course_pkg.checks.nb05 import probe_cache_key
    return probe_cache_key(cache_key)
"""

PERCENTILES_PROBE = """
def probe():
    from course_pkg.checks.nb05 import probe_percentiles
    return probe_percentiles(latency_percentiles)
"""


def _percentiles_close(got: Any, expected: list[dict[str, float]]) -> Outcome:
    if not isinstance(got, list) or len(got) != len(expected):
        return Outcome(0.0, f"expected results for {len(expected)} latency lists")
    right = 0
    for answer, want in zip(got, expected, strict=True):
        with contextlib.suppress(KeyError, TypeError, ValueError):
            right += all(math.isclose(float(answer[k]), v, rel_tol=1e-9) for k, v in want.items())
    return Outcome(right / len(expected), f"{right} of {len(expected)} latency lists right")


def _scorer_properties() -> list[str]:
    from course_pkg.checks.nb05 import SCORER_HINTS

    return list(SCORER_HINTS)


def _bucket_expected() -> list[bool]:
    from course_pkg.checks.nb05 import bucket_expected, flat

    return flat(bucket_expected())


def _key_expected() -> list[bool]:
    from course_pkg.checks.nb05 import KEY_CASES

    return [equal for *_, equal in KEY_CASES]


def _percentiles_expected() -> list[dict[str, float]]:
    from course_pkg.checks.nb05 import percentiles_expected

    return percentiles_expected()


ASSIGNMENT = Assignment(
    id="05",
    notebook="05_batch_vs_realtime.ipynb",
    title="Batch vs real time",
    # Demonstrations no probe needs (a test checks nothing later reads what only they bind),
    # skipped while unchanged: the digits MLP package and the micro-batching on/off load runs
    demo_cells=("b4857b3f", "e1743b3a"),
    questions=(
        Question(
            "chunked_scorer",
            3,
            "A chunked batch scorer",
            SCORER_PROBE,
            _scorer_properties,
            all_true,
            hint="read with chunksize, write each chunk, header once",
            answers=("score_in_chunks",),
        ),
        Question(
            "token_bucket",
            3,
            "A token bucket",
            BUCKET_PROBE,
            _bucket_expected,
            fraction_equal,
            hint="refill rate × elapsed, cap at burst, one token per request",
            answers=("TokenBucket",),
        ),
        Question(
            "cache_key",
            2,
            "Cache keys",
            CACHE_KEY_PROBE,
            _key_expected,
            fraction_equal,
            hint="canonical row (sorted keys, 12 == 12.0) plus model and version",
            answers=("cache_key",),
        ),
        Question(
            "percentiles",
            2,
            "Latency percentiles",
            PERCENTILES_PROBE,
            _percentiles_expected,
            _percentiles_close,
            hint="nearest rank: sorted copy, position ceil(q/100 × n)",
            answers=("latency_percentiles",),
        ),
    ),
    cell_timeout=300,
    wall_timeout=900,
)
