"""Self-checks for notebook 08 (production readiness), and the pieces the grader reuses.

Every check is pure (no server, no network), so it runs the same in the notebook and in the
grading sandbox; the notebook then uses the student's answers against the real server.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from course_pkg.checks._registry import CheckFailed, callable_answer, expect, register

# --- 1 · weighted, sticky routing -----------------------------------------------------------

CLIENTS = [f"client-{i}" for i in range(20_000)]


def probe_sticky_split(choose: Any) -> dict[str, bool]:
    """Properties of ``choose(weights, client_id, model) -> version`` over 20,000 clients."""
    weights = {"1.0.0": 90, "1.1.0": 10}
    result: dict[str, bool] = {}
    first = [choose(weights, c, "churn") for c in CLIENTS]
    counts = Counter(first)
    result["only_known_versions"] = set(counts) <= set(weights)
    result["proportional"] = abs(counts["1.1.0"] / len(CLIENTS) - 0.10) < 0.015
    result["sticky"] = first[:2_000] == [choose(weights, c, "churn") for c in CLIENTS[:2_000]]
    reordered = {"1.1.0": 10, "1.0.0": 90}
    result["order_free"] = first[:2_000] == [choose(reordered, c, "churn") for c in CLIENTS[:2_000]]
    ramped = [choose({"1.0.0": 50, "1.1.0": 50}, c, "churn") for c in CLIENTS]
    moved_back = sum(a == "1.1.0" and b == "1.0.0" for a, b in zip(first, ramped, strict=True))
    result["ramps_one_way"] = (
        moved_back == 0 and abs(Counter(ramped)["1.1.0"] / 20_000 - 0.5) < 0.02
    )
    other_model = [choose(weights, c, "digits") for c in CLIENTS[:5_000]]
    result["independent_per_model"] = other_model != first[:5_000]
    result["all_to_one"] = {
        choose({"1.0.0": 100, "1.1.0": 0}, c, "churn") for c in CLIENTS[:500]
    } == {"1.0.0"}
    return result


STICKY_HINTS = {
    "only_known_versions": "return one of the versions in weights",
    "proportional": "about 10 % of clients should get the 10 % version (hash → [0, 100))",
    "sticky": "the same client must always get the same version: hash it, no random()",
    "order_free": "the answer must not depend on the order of the weights dict: sort them",
    "ramps_one_way": "going 90/10 → 50/50 must never move a canary client back: give the "
    "canary (the smaller, newer share) the low end of the range",
    "independent_per_model": "hash the model name with the client, so one unlucky client is "
    "not the canary of every model",
    "all_to_one": "a version with weight 0 gets no client",
}


@register(
    "08.sticky_split",
    forbidden=("course_pkg.serving.gateway.bucket", "course_pkg.serving.gateway.Routing"),
)
def _sticky_split(answer: Any) -> str:
    try:
        result = probe_sticky_split(callable_answer(answer, "choose_version"))
    except (CheckFailed, NotImplementedError):
        raise  # check() reports NotImplementedError as "not done yet"
    except Exception as error:
        raise CheckFailed(f"choose_version raised {type(error).__name__}: {error}") from None
    for name, ok in result.items():
        expect(ok, STICKY_HINTS[name])
    return "sticky, proportional, order-free, ramps one way, independent per model"


# --- 2 · the canary verdict -----------------------------------------------------------------


def _stats(requests: int, errors: int, p99_ms: float) -> dict[str, float]:
    return {"requests": requests, "errors": errors, "p99_ms": p99_ms}


# (stable, canary, what the case is about). No expected verdicts here: an answer could look
# them up. The check asks course_pkg.canary.verdict (which the answer may not call: watched).
VERDICT_CASES: list[tuple[dict[str, float], dict[str, float], str]] = [
    (_stats(9000, 0, 8.0), _stats(1000, 0, 8.5), "a canary as good as stable"),
    (_stats(9000, 9, 8.0), _stats(1000, 250, 8.0), "25 % errors"),
    (_stats(9000, 0, 8.0), _stats(1000, 30, 8.0), "3 % errors vs 0 %"),
    (_stats(9000, 90, 8.0), _stats(1000, 15, 8.0), "1.5 % errors vs 1 %"),
    (_stats(9000, 0, 8.0), _stats(1000, 0, 20.0), "p99 2.5x stable's"),
    (_stats(9000, 0, 8.0), _stats(1000, 0, 11.0), "p99 1.375x stable's"),
    (_stats(9000, 0, 8.0), _stats(50, 0, 8.0), "50 requests, no errors"),
    (_stats(9000, 0, 8.0), _stats(50, 3, 8.0), "50 requests, 3 errors"),
    (_stats(9000, 0, 8.0), _stats(50, 20, 8.0), "50 requests, 20 errors"),
]


def verdicts_expected() -> list[str]:
    from course_pkg.canary import verdict

    return [verdict(stable, canary) for stable, canary, _ in VERDICT_CASES]


def probe_verdict(verdict: Any) -> list[bool]:
    return [
        verdict(stable, canary) == want
        for (stable, canary, _), want in zip(VERDICT_CASES, verdicts_expected(), strict=True)
    ]


@register("08.canary_verdict", forbidden=("course_pkg.canary.verdict",))
def _canary_verdict(answer: Any) -> str:
    verdict = callable_answer(answer, "canary_verdict")
    for (stable, canary, why), want in zip(VERDICT_CASES, verdicts_expected(), strict=True):
        got = verdict(stable, canary)
        expect(
            got == want,
            f"stable {stable}, canary {canary} ({why}): expected {want!r}, got {got!r}",
        )
    return f"{len(VERDICT_CASES)} cases, including too-few-requests and a latency regression"


# --- 3 · replicas from measured throughput ---------------------------------------------------

# (peak req/s, measured req/s per core, target utilisation, min replicas)
REPLICA_CASES = [
    (10_000, 5_000, 0.6, 2),
    (100, 5_000, 0.6, 2),
    (3_000, 5_000, 0.6, 2),
    (3_001, 5_000, 0.6, 2),
    (20_000, 1_000, 0.5, 3),
    (12_000, 4_000, 0.75, 2),
]


def replicas_expected() -> list[int]:
    from course_pkg.kubernetes import plan_capacity

    return [
        plan_capacity(peak, per_core, target_utilization=u, min_replicas=m).replicas
        for peak, per_core, u, m in REPLICA_CASES
    ]


def probe_replicas(replicas_for: Any) -> list[int | None]:
    answers: list[int | None] = []
    for case in REPLICA_CASES:
        try:
            answers.append(int(replicas_for(*case)))
        except NotImplementedError:
            raise
        except Exception:
            answers.append(None)
    return answers


@register(
    "08.replicas",
    forbidden=("course_pkg.kubernetes.plan_capacity",),
)
def _replicas(answer: Any) -> str:
    got = probe_replicas(callable_answer(answer, "replicas_for"))
    for case, mine, want in zip(REPLICA_CASES, got, replicas_expected(), strict=True):
        peak, per_core, utilization, minimum = case
        expect(
            mine == want,
            f"peak {peak:,} req/s, {per_core:,} per core at {utilization:.0%}, at least "
            f"{minimum}: expected {want} replicas, got {mine} (ceil, then one spare, then the "
            "minimum)",
        )
    return "ceil(peak / (per core × utilisation)) + 1 spare, never below the minimum"
