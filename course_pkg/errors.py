"""The root of course_pkg's exceptions, and the two the ``course-pkg`` CLI raises itself.

Every exception course_pkg raises on purpose derives from ``CourseError``, so a caller (the
CLI, a notebook, a service) catches the package's errors in one clause and lets bugs through.
Each keeps the builtin base it had before (``InputError`` is still a ``ValueError``,
``ParityError`` an ``AssertionError``), so existing ``except`` clauses keep working. This
module imports nothing, so the CLI's exit-code map costs nothing to load.
(``course_pkg.demos`` is standalone, copied into Spaces and Azure folders, and keeps its own.)
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class CourseError(Exception):
    """Base class: course_pkg could not do what was asked, for a reason it can name."""


class UsageError(CourseError, ValueError):
    """A flag or argument the command cannot use (``course-pkg`` exits 2)."""


class CommandFailed(CourseError, RuntimeError):
    """A step outside Python failed: Docker, a registry, Redis (``course-pkg`` exits 1)."""


class ErrorDetail(TypedDict):
    """One reason input was refused, the same shape in every protocol and in ``InputError``:
    the field (a column, ``file``, ``(body)``), the 0-based row or None, and a message."""

    field: str
    row: int | None
    message: str
    type: NotRequired[str]  # pydantic's error type, when pydantic found it
