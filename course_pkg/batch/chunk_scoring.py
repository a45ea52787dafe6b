"""One chunk through the model, in Arrow: validate, reject, predict, build the output table.

Both engines call ``ChunkScorer.score`` (local threads on part files, Ray Data actors in
``map_batches``), so a row is validated, rejected and scored the same way everywhere.

Validation is vectorised over Arrow columns and finds *every* bad row (the per-request
validator in ``OnnxPredictor.problems`` stops at 100 per column, which is right for an error
message and wrong for a 10M-row file: a 101st NaN would be scored). The reasons are the ones
the server gives (``hour: 'noon' is not a number``, ``merchant_category: unknown category …``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from course_pkg.onnx_export.predictor import _NUMERIC_FEEDS, OnnxPredictor

REJECT_REASON = "reject_reason"


@dataclass(frozen=True)
class ScoredChunk:
    output: pa.Table  # the good rows: every input column, prediction, probabilities, version
    rejects: pa.Table | None  # the bad rows as text, with ``reject_reason``; None when none

    @property
    def rejected(self) -> int:
        return 0 if self.rejects is None else self.rejects.num_rows


class ChunkScorer:
    """Scores Arrow tables with one verified ``OnnxPredictor`` (thread-safe: ORT sessions are)."""

    def __init__(self, predictor: OnnxPredictor) -> None:
        if predictor.tensor_input is not None:
            raise ValueError(
                f"{predictor.source}: batch scoring takes one column per model input; "
                "this model takes one matrix (score it with OnnxPredictor.predict_tensor)"
            )
        self.predictor = predictor
        manifest = predictor.manifest
        self.version = str(manifest.get("version", ""))
        classes = manifest.get("output_schema", {}).get("probabilities", {}).get("classes")
        self.classes: list[Any] = list(classes or [])
        self.categories = {
            c["name"]: c.get("categories")
            for c in predictor.schema
            if predictor.unknown_categories == "error"
        }
        self.numeric = [n for n, kind in predictor.input_types.items() if kind != "tensor(string)"]

    def score(self, table: pa.Table, where: str = "chunk") -> ScoredChunk:
        """``table`` → its scored rows and its rejects; a missing column raises ``ValueError``."""
        table = table.combine_chunks()
        columns: dict[str, pa.Array] = {}  # model inputs as they are fed (numbers parsed)
        reasons: dict[int, list[str]] = {}
        bad = np.zeros(table.num_rows, dtype=bool)
        for name, kind in self.predictor.input_types.items():
            if name not in table.column_names:
                raise ValueError(f"{where}: {name}: missing column (the model needs it)")
            column = _single_array(table.column(name))
            if kind == "tensor(string)":
                column, problems = _text_problems(name, column, self.categories.get(name))
            else:
                column, problems = _number_problems(name, column, where)
            columns[name] = column
            for row, message in problems:
                reasons.setdefault(row, []).append(f"{name}: {message}")
                bad[row] = True
        rejects = None
        if reasons:
            rows = sorted(reasons)
            rejects = _as_text(table.take(pa.array(rows, type=pa.int64()))).append_column(
                REJECT_REASON, pa.array(["; ".join(reasons[r]) for r in rows], type=pa.string())
            )
            keep = pa.array(~bad)
            table = table.filter(keep)
            columns = {name: column.filter(keep) for name, column in columns.items()}
        for name in self.numeric:  # a CSV's text columns go out as the numbers they held
            if table.schema.field(name).type != columns[name].type:
                table = table.set_column(table.schema.get_field_index(name), name, columns[name])
        return ScoredChunk(self._predict(table, columns), rejects)

    def _predict(self, table: pa.Table, columns: dict[str, pa.Array]) -> pa.Table:
        rows = table.num_rows
        if rows:
            feeds = {}
            for name, kind in self.predictor.input_types.items():
                if kind == "tensor(string)":
                    values = columns[name].to_numpy(zero_copy_only=False).astype(object)
                else:
                    values = columns[name].to_numpy(zero_copy_only=False)
                    values = values.astype(_NUMERIC_FEEDS[kind], copy=False)
                feeds[name] = values.reshape(-1, 1)
            labels, proba = self.predictor.run_feeds(feeds)
        else:
            labels = np.zeros(0, dtype=np.int64)
            proba = np.zeros((0, max(len(self.classes), 1)), dtype=np.float32)
        table = table.append_column("prediction", pa.array(labels))
        for index, cls in enumerate(self.classes or range(proba.shape[1])):
            table = table.append_column(
                f"probability_{cls}", pa.array(proba[:, index].astype(np.float32))
            )
        return table.append_column(
            "model_version", pa.repeat(pa.scalar(self.version, pa.string()), rows)
        )


def _single_array(column: pa.ChunkedArray) -> pa.Array:
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array


def _number_problems(name: str, column: pa.Array, where: str) -> tuple[pa.Array, list[Any]]:
    """Numbers must be real, finite numbers. Text (a CSV column read as text) is parsed here:
    the parseable values become numbers, the rest are rejects ('noon' is not a number)."""
    if pa.types.is_boolean(column.type):
        raise ValueError(f"{where}: {name}: booleans are not numbers (send 0/1)")
    problems: list[tuple[int, str]] = []
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column, problems = _parse_numbers(column)
    elif not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise ValueError(f"{where}: {name}: {column.type} is not a number type")
    unparsed = {row for row, _ in problems}
    nulls = column.is_null()
    invalid = nulls
    if pa.types.is_floating(column.type):  # Kleene: a null is invalid, not "unknown"
        invalid = pc.or_kleene(nulls, pc.invert(pc.is_finite(column)))
    if invalid.true_count:
        for found in np.flatnonzero(invalid.to_numpy(zero_copy_only=False)):
            row = int(found)
            if row in unparsed:
                continue
            value = column[row].as_py()
            shown = "missing value (null)" if value is None else f"{value}"
            problems.append((row, f"{shown} is not allowed (finite only)"))
    return column, problems


def _parse_numbers(column: pa.Array) -> tuple[pa.Array, list[tuple[int, str]]]:
    try:  # the usual case: every value is a number (or empty)
        return pc.cast(pc.utf8_trim_whitespace(column), pa.float64()), []
    except pa.ArrowInvalid:
        pass
    import pandas as pd  # the rare chunk with bad text: find it value by value

    text = column.to_pandas()
    numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    bad_text = numbers.isna() & text.notna()
    problems = [
        (int(row), f"{text.iloc[row]!r} is not a number") for row in np.flatnonzero(bad_text)
    ]
    return pa.array(numbers.to_numpy(), type=pa.float64()), problems


def _text_problems(
    name: str, column: pa.Array, allowed: list[str] | None
) -> tuple[pa.Array, list[tuple[int, str]]]:
    """Strings must be strings, and one of ``allowed`` when the schema lists categories."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        values = column.to_pylist()  # numbers where text belongs: every row is a reject
        return column.cast(pa.string(), safe=False), [
            (row, _not_text(value)) for row, value in enumerate(values)
        ]
    problems: list[tuple[int, str]] = []
    nulls = column.is_null()
    if nulls.true_count:
        problems += [(int(r), _not_text(None)) for r in np.flatnonzero(nulls.to_numpy(False))]
    if allowed:
        known = pc.is_in(column, value_set=pa.array(allowed))
        unknown = pc.and_(pc.invert(known.fill_null(True)), pc.invert(nulls))
        if unknown.true_count:
            listed = ", ".join(allowed)
            problems += [
                (int(r), f"unknown category {column[int(r)].as_py()!r}; allowed: {listed}")
                for r in np.flatnonzero(unknown.to_numpy(zero_copy_only=False))
            ]
    return column, problems


def _not_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing value (null): send a string"
    return f"{value!r} is not a string"


def _as_text(table: pa.Table) -> pa.Table:
    """Rejected rows for people to read: every column as text, so any bad value fits."""
    arrays = []
    for column in table.columns:
        try:
            arrays.append(pc.cast(column, pa.string()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            arrays.append(pa.array([None if v is None else str(v) for v in column.to_pylist()]))
    return pa.table(arrays, names=table.column_names)
