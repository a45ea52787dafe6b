"""Reading a big CSV/Parquet file as Arrow tables of exactly ``chunk_rows`` rows.

The scorer stays in Arrow from the file to the model's feeds: no pandas on the hot path
(a ``to_pandas`` per chunk was a third of the old scorer's time, docs/BATCH.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

SUFFIXES = (".csv", ".parquet")


def csv_convert_options(text_columns: list[str] | None) -> Any:
    """``text_columns`` are read as text: pyarrow fixes each column's type from the first
    block, so one bad value ("noon" in an hour column) further down would otherwise abort the
    whole read. The scorer parses them chunk by chunk and rejects only what is not a number."""
    import pyarrow.csv as pcsv

    types = {name: pa.string() for name in text_columns or []}
    return pcsv.ConvertOptions(column_types=types, strings_can_be_null=True)


def read_tables(
    path: Path, chunk_rows: int, text_columns: list[str] | None = None
) -> Iterator[pa.Table]:
    """The file as Arrow tables of exactly ``chunk_rows`` rows (the last may be shorter)."""
    try:
        yield from _read_tables(path, chunk_rows, text_columns)
    except Exception as error:  # pyarrow.ArrowInvalid and friends: say which file, and why
        if type(error).__module__.startswith("pyarrow"):
            raise ValueError(f"{path}: cannot read it as a table: {error}") from None
        raise


def read_chunks(
    path: Path, chunk_rows: int, text_columns: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    """``read_tables`` as DataFrames (for people exploring a file; the scorer stays in Arrow)."""
    for table in read_tables(path, chunk_rows, text_columns):
        yield table.to_pandas()


def _read_tables(path: Path, chunk_rows: int, text_columns: list[str] | None) -> Iterator[pa.Table]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        batches: Iterator[pa.RecordBatch] = pq.ParquetFile(path).iter_batches(batch_size=chunk_rows)
    elif suffix == ".csv":
        import pyarrow.csv as pcsv

        batches = iter(pcsv.open_csv(path, convert_options=csv_convert_options(text_columns)))
    else:
        raise ValueError(f"{path}: batch scoring reads .parquet or .csv files")
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        if batch.num_rows == chunk_rows and not pending:  # Parquet's usual case: no re-cut
            yield pa.Table.from_batches([batch])
            continue
        pending.append(batch)
        held += batch.num_rows
        while held >= chunk_rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, chunk_rows)
            rest = table.slice(chunk_rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending)


def row_count(path: Path) -> int | None:
    """Rows in a Parquet file (from its footer); None for CSV (unknown without reading it)."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return None
