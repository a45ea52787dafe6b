"""The table of self-checks, and the exception a check raises to say what is wrong."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

REGISTRY: dict[str, Callable[[Any], str | None]] = {}

F = TypeVar("F", bound=Callable[[Any], str | None])


class CheckFailed(Exception):
    """Raised by a check with a hint for the student (the message is shown as is)."""


def register(exercise: str) -> Callable[[F], F]:
    """Decorator: ``@register("00.sha256_file")`` adds a check under that id."""

    def decorate(fn: F) -> F:
        if exercise in REGISTRY and REGISTRY[exercise] is not fn:
            raise ValueError(f"check {exercise!r} is registered twice")
        REGISTRY[exercise] = fn
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
