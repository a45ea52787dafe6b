"""Students' self-checks: ``check("00.sha256_file", sha256_file)``.

A check runs the student's answer on a few inputs and prints one line: ✅ with what passed, or
❌ with a hint. It never raises — not for a wrong answer, not for an unfinished exercise
(``NotImplementedError``), not for a crash inside the student's code, not for an unknown id — so
an unfinished notebook still runs top to bottom. It returns a ``CheckResult`` that is truthy
when the check passed, for anyone who wants to branch on it.

An answer that is, or calls, the course's own implementation of the exercise (its registered
forbidden references, see ``_delegation``) fails with a plain message saying so.

Self-checks are feedback, not grading: a student can read or bypass them. Grading happens in
``grader`` with hidden probes in a sandbox, scored on the host.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

from course_pkg.checks import _delegation
from course_pkg.checks._registry import FORBIDDEN, REGISTRY, CheckFailed, register

__all__ = ["CheckFailed", "CheckResult", "check", "list_checks", "register"]


@dataclass(frozen=True)
class CheckResult:
    exercise: str
    passed: bool
    message: str
    # Set once check() has printed the verdict, so Jupyter does not show it a second time
    # when check(...) is the last expression of a cell.
    _shown: bool = field(default=False, compare=False, repr=False)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        mark = "✅" if self.passed else "❌"
        return f"{mark} {self.exercise}: {self.message}"

    def _ipython_display_(self) -> None:
        if not self._shown:
            print(self)


def _load_checks() -> None:
    # Importing the per-notebook modules registers their checks.
    from course_pkg.checks import (  # noqa: F401
        nb00,
        nb01,
        nb02,
        nb03,
        nb04,
        nb05,
        nb06,
        nb07,
        nb07_mlflow,
        nb08,
        nb09,
    )


def list_checks() -> list[str]:
    _load_checks()
    return sorted(REGISTRY)


def _run(exercise: str, answer: Any) -> CheckResult:
    _load_checks()
    entry = REGISTRY.get(exercise)
    if entry is None:
        known = ", ".join(sorted(k for k in REGISTRY if k.split(".")[0] == exercise.split(".")[0]))
        return CheckResult(
            exercise, False, f"no such exercise id; ids for this notebook: {known or 'none'}"
        )
    forbidden = FORBIDDEN.get(exercise, ())
    same = _delegation.identity_hits(answer, forbidden)
    if same:
        return CheckResult(exercise, False, _delegation.message(same, identity=True))
    watch = _delegation.Watch(forbidden)
    try:
        message = entry(watch.guard(answer))
    except CheckFailed as failed:
        if watch.hits:
            return CheckResult(exercise, False, _delegation.message(watch.hits))
        return CheckResult(exercise, False, str(failed))
    except NotImplementedError:
        return CheckResult(exercise, False, "not done yet — replace `raise NotImplementedError`")
    except Exception as error:  # the student's code crashed: report it, never propagate
        if watch.hits:
            return CheckResult(exercise, False, _delegation.message(watch.hits))
        where = traceback.extract_tb(error.__traceback__)[-1]
        return CheckResult(
            exercise,
            False,
            f"your code raised {type(error).__name__}: {error} "
            f"(line {where.lineno} of {where.name})",
        )
    if watch.hits:
        return CheckResult(exercise, False, _delegation.message(watch.hits))
    return CheckResult(exercise, True, message or "passed")


def check(exercise: str, answer: Any, *, quiet: bool = False) -> CheckResult:
    """Check ``answer`` for ``exercise`` and print the verdict; never raises."""
    try:
        result = _run(exercise, answer)
    except BaseException as error:  # even a broken check must not stop the notebook
        if isinstance(error, KeyboardInterrupt):
            raise
        result = CheckResult(exercise, False, f"the check itself failed ({error!r}); tell staff")
    if not quiet:
        print(result)
        object.__setattr__(result, "_shown", True)
    return result
