"""Hidden grading spec for notebook 08 (production readiness).

The probes are pure (course_pkg.checks.nb08): routing properties over 20,000 synthetic
clients, the canary verdict on fixed windows, replicas on fixed plans.
"""

from __future__ import annotations

from grader.specs.model import Assignment, Question, all_true, fraction_equal

STICKY_PROBE = """
def probe():
    from course_pkg.checks.nb08 import probe_sticky_split
    return probe_sticky_split(choose_version)
"""

VERDICT_PROBE = """
def probe():
    from course_pkg.checks.nb08 import probe_verdict
    return probe_verdict(canary_verdict)
"""

REPLICAS_PROBE = """
def probe():
    from course_pkg.checks.nb08 import probe_replicas
    return probe_replicas(replicas_for)
"""


def _sticky_properties() -> list[str]:
    from course_pkg.checks.nb08 import STICKY_HINTS

    return list(STICKY_HINTS)


def _verdict_expected() -> list[bool]:
    from course_pkg.checks.nb08 import VERDICT_CASES

    return [True] * len(VERDICT_CASES)


def _replicas_expected() -> list[int]:
    from course_pkg.checks.nb08 import replicas_expected

    return replicas_expected()


ASSIGNMENT = Assignment(
    id="08",
    notebook="08_production_readiness.ipynb",
    title="Production readiness",
    questions=(
        Question(
            "sticky_split",
            4,
            "Weighted, sticky routing",
            STICKY_PROBE,
            _sticky_properties,
            all_true,
            hint="hash (model, client) to [0, 100); stable takes the top of the range",
            answers=("choose_version",),
        ),
        Question(
            "canary_verdict",
            3,
            "Judge a canary",
            VERDICT_PROBE,
            _verdict_expected,
            fraction_equal,
            hint="errors first (with evidence), then wait for traffic, then latency",
            answers=("canary_verdict",),
        ),
        Question(
            "replicas",
            2,
            "Replicas from measured throughput",
            REPLICAS_PROBE,
            _replicas_expected,
            fraction_equal,
            hint="max(minimum, ceil(peak / (per core × utilisation)) + 1)",
            answers=("replicas_for",),
        ),
    ),
    cell_timeout=300,
    wall_timeout=900,
)
