"""One error shape for the native API, and the exceptions the handlers raise.

Every native error body is::

    {"error": {"status": 422, "code": "invalid_input", "message": "...",
               "details": [{"field": "contract", "row": 0, "message": "..."}],
               "request_id": "..."}}

The MLflow, TF Serving and KServe routes render the same exceptions in their own protocols'
shapes (see their modules). A client mistake is never a 500.
"""

from __future__ import annotations

from typing import Any

from course_pkg.errors import CourseError, ErrorDetail
from course_pkg.onnx_export.predictor import describe_problems


class ApiError(CourseError):
    """An error with an HTTP status, a stable machine code, a message and per-field details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[ErrorDetail] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers or {}


def invalid_input(details: list[ErrorDetail], message: str | None = None) -> ApiError:
    count = len(details)
    summary = message or (
        f"{count} problem{'s' if count != 1 else ''} with the input: "
        + describe_problems(details, 3)
        + (" …" if count > 3 else "")
    )
    return ApiError(422, "invalid_input", summary, details)


def not_found(what: str, available: list[str]) -> ApiError:
    listing = ", ".join(available) or "none"
    return ApiError(404, "not_found", f"{what} is not served here; available: {listing}")


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            "body_too_large",
            f"request body exceeds {limit:,} bytes; send fewer rows per request, or use the "
            "CSV endpoint / batch scoring for large files",
        )


def unsupported_media_type(got: str | None, accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "unsupported_media_type",
        f"Content-Type {got or '(none)'} is not accepted here; send one of {', '.join(accepted)}",
    )


def with_details(error: ApiError, separator: str = ": ") -> str:
    """The message, then up to 20 per-field problems: for protocols whose errors are one string."""
    if not error.details:
        return error.message
    return error.message + separator + describe_problems(error.details, 20)


def error_body(error: ApiError, request_id: str | None) -> dict[str, Any]:
    return {
        "error": {
            "status": error.status,
            "code": error.code,
            "message": error.message,
            "details": error.details,
            "request_id": request_id,
        }
    }
