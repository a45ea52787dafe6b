"""A large card-transactions file for batch inference, generated on demand (never committed).

Ten million rows are ~600 MB of CSV: too big for git, cheap to regenerate. Rows are produced
in fixed-size chunks, each from its own seed (``SeedSequence(seed).spawn``-style keying by chunk
number), so memory stays flat, the output is identical for the same arguments, and the first N
rows of a bigger file equal a smaller file with the same ``chunk_rows``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

SEED: Final = 7
CHUNK_ROWS: Final = 250_000
MERCHANT_CATEGORIES: Final = (
    "grocery",
    "fuel",
    "restaurant",
    "online-retail",
    "travel",
    "electronics",
    "gambling",
)
COLUMNS: Final = (
    "transaction_id",
    "customer_id",
    "amount",
    "merchant_category",
    "hour",
    "card_present",
    "foreign",
    "is_fraud",
)


def transaction_chunk(start: int, rows: int, seed: int = SEED) -> pd.DataFrame:
    """Rows ``start`` … ``start + rows - 1``; chunk-aligned calls are what the generator uses."""
    rng = np.random.default_rng([seed, start])
    category = rng.choice(
        len(MERCHANT_CATEGORIES), size=rows, p=[0.3, 0.15, 0.2, 0.2, 0.06, 0.07, 0.02]
    )
    amount = np.round(rng.lognormal(3.2, 1.0, rows) * np.where(category == 4, 6.0, 1.0), 2)
    hour = rng.integers(0, 24, rows)
    card_present = rng.random(rows) < np.where(category == 3, 0.0, 0.85)
    foreign = rng.random(rows) < 0.05
    logit = (
        -6.2
        + 0.9 * np.log1p(amount) / 3
        + 1.2 * foreign
        + 1.0 * (~card_present)
        + 0.8 * ((hour < 5) | (hour > 22))
        + 1.1 * (category == 6)
        + 0.6 * (category == 5)
    )
    is_fraud = rng.random(rows) < 1 / (1 + np.exp(-logit))
    ids = np.arange(start, start + rows, dtype=np.int64)
    return pd.DataFrame(
        {
            "transaction_id": ids,
            "customer_id": rng.integers(1, 200_001, rows),
            "amount": amount,
            "merchant_category": np.asarray(MERCHANT_CATEGORIES, dtype=object)[category],
            "hour": hour,
            "card_present": card_present.astype(np.int64),
            "foreign": foreign.astype(np.int64),
            "is_fraud": is_fraud.astype(np.int64),
        }
    )


def iter_transactions(
    rows: int, seed: int = SEED, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """Yield the file's rows chunk by chunk (memory bounded by ``chunk_rows``)."""
    if rows < 0 or chunk_rows <= 0:
        raise ValueError(f"rows must be ≥ 0 and chunk_rows > 0, got {rows=} {chunk_rows=}")
    for start in range(0, rows, chunk_rows):
        chunk = transaction_chunk(start, chunk_rows, seed)
        # A short last chunk is the head of a full one, so a smaller file is a prefix of a
        # bigger one (each column is drawn as a whole array, so drawing fewer would shift it).
        yield chunk if start + chunk_rows <= rows else chunk.head(rows - start)


def write_transactions(
    path: Path, rows: int, seed: int = SEED, chunk_rows: int = CHUNK_ROWS
) -> Path:
    """Write ``rows`` transactions to ``path``: ``.csv`` or ``.parquet`` by extension."""
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".parquet"}:
        raise ValueError(f"{path}: use a .csv or .parquet file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    if suffix == ".csv":
        with tmp.open("w", newline="") as handle:
            for i, chunk in enumerate(iter_transactions(rows, seed, chunk_rows)):
                chunk.to_csv(handle, index=False, header=i == 0, lineterminator="\n")
            if rows == 0:
                handle.write(",".join(COLUMNS) + "\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer: pq.ParquetWriter | None = None
        try:
            for chunk in iter_transactions(rows, seed, chunk_rows):
                table = pa.Table.from_pandas(chunk, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            pq.write_table(pa.Table.from_pandas(transaction_chunk(0, 0, seed)), tmp)
    tmp.replace(path)  # atomic: a crash never leaves a half-written file under the real name
    return path
