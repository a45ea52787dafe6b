"""Request validation generated from a manifest's ``input_schema`` (pydantic v2).

A row is a ``TypedDict`` with ``extra="forbid"``:

| schema column | pydantic type | rejects |
|---|---|---|
| ``categories: [...]`` | ``Literal[...]`` | unknown categories (the message lists them) |
| ``dtype: int*`` | strict ``int`` | strings, floats, booleans |
| ``dtype: float*`` | strict finite ``float`` (ints accepted) | strings, booleans, NaN, ±inf |
| ``shape: [k]`` | list of exactly k finite floats | wrong length, non-numbers |

Validation errors become ``{"field", "row", "message", "type"}`` entries. TypedDicts (not
BaseModels) keep validation at a few microseconds per row: the server's hot path.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AllowInfNan, ConfigDict, Field, Strict, TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from course_pkg.errors import ErrorDetail
from course_pkg.serving.errors import ApiError, invalid_input

FiniteFloat = Annotated[float, Strict(), AllowInfNan(False)]
StrictInt = Annotated[int, Strict()]


def _annotation(column: dict[str, Any]) -> Any:
    if column.get("categories"):
        return Literal[tuple(column["categories"])]
    dtype = str(column.get("dtype", "float64"))
    if column.get("shape"):
        (length,) = column["shape"]
        return Annotated[list[FiniteFloat], Field(min_length=length, max_length=length)]
    if dtype in {"string", "str", "object"}:
        return Annotated[str, Strict()]
    if dtype.startswith(("int", "uint")):
        return StrictInt
    return FiniteFloat


class RowSchema:
    """Validates records for one model and turns them into columns."""

    def __init__(self, input_schema: list[dict[str, Any]], model_name: str) -> None:
        if not input_schema:
            raise ValueError(f"model {model_name!r} has no input_schema in its manifest")
        self.columns = [c["name"] for c in input_schema]
        fields = {c["name"]: _annotation(c) for c in input_schema}
        row_type = TypedDict(f"{model_name.replace('-', '_')}_row", fields)  # type: ignore[misc]
        row_type.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
        self.row_type = row_type
        self._rows: TypeAdapter[list[Any]] = TypeAdapter(list[row_type])

    def validate_rows(self, rows: Any, max_rows: int) -> list[dict[str, Any]]:
        """Validated rows, or ``ApiError`` 422 listing every problem (capped at 100)."""
        if not isinstance(rows, list):
            raise invalid_input(
                [{"field": "records", "row": None, "message": "expected a list of records"}]
            )
        if not rows:
            raise invalid_input(
                [{"field": "records", "row": None, "message": "empty batch: send at least one"}]
            )
        if len(rows) > max_rows:
            raise ApiError(
                413,
                "too_many_rows",
                f"{len(rows):,} rows in one request; the limit is {max_rows:,} — split the "
                "batch, or send CSV (streamed) / use batch scoring",
            )
        try:
            return self._rows.validate_python(rows)
        except ValidationError as error:
            raise invalid_input(self.problems(error)) from None

    @staticmethod
    def problems(error: ValidationError) -> list[ErrorDetail]:
        found: list[ErrorDetail] = []
        for item in error.errors(include_url=False)[:100]:
            loc = list(item["loc"])
            row = loc[0] if loc and isinstance(loc[0], int) else None
            if row is not None:
                loc.pop(0)
            field = ".".join(str(part) for part in loc) or "(row)"
            message = item["msg"]
            if item["type"] == "finite_number" or (
                isinstance(item.get("input"), float) and not math.isfinite(item["input"])
            ):
                message = "NaN and infinity are not allowed (finite numbers only)"
            found.append({"field": field, "row": row, "message": message, "type": item["type"]})
        return found

    def to_columns(self, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
        return {name: [row[name] for row in rows] for name in self.columns}

    def json_schema(self) -> dict[str, Any]:
        return TypeAdapter(self.row_type).json_schema()
