"""The table of self-checks, and the exception a check raises to say what is wrong."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from course_pkg.errors import CourseError

REGISTRY: dict[str, Callable[[Any], str | None]] = {}
# exercise id → dotted names of course_pkg code an answer must neither be nor run (the
# course's own implementation of what the exercise asks for). Names, not objects: the list
# travels to the grading sandbox in the job and is matched on the host against the source.
FORBIDDEN: dict[str, tuple[str, ...]] = {}

F = TypeVar("F", bound=Callable[[Any], str | None])


class CheckFailed(CourseError):
    """Raised by a check with a hint for the student (the message is shown as is)."""


def register(exercise: str, *, forbidden: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Decorator: ``@register("00.parse_lock", forbidden=("course_pkg.preflight.parse_lock",))``
    adds a check under that id, naming the course_pkg code the answer must not delegate to."""

    def decorate(fn: F) -> F:
        if exercise in REGISTRY and REGISTRY[exercise] is not fn:
            raise ValueError(f"check {exercise!r} is registered twice")
        REGISTRY[exercise] = fn
        FORBIDDEN[exercise] = tuple(forbidden)
        return fn

    return decorate


def expect(condition: bool, hint: str) -> None:
    """Fail the check with ``hint`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(hint)


def callable_answer(answer: Any, name: str) -> Any:
    """``answer`` itself when it is callable; else fail with the hint to pass the function."""
    expect(callable(answer), f"pass the function itself: check(..., {name})")
    return answer
