"""Batch scoring: a big CSV/Parquet file through the ONNX model, chunk by chunk.

    summary = score_file("build/fraud", "build/transactions.parquet", "build/scored.parquet")
    course-pkg batch-score build/fraud build/transactions.parquet --out build/scored.parquet

- **Streaming**: pyarrow reads the input in batches, re-cut into chunks of exactly
  ``chunk_rows`` rows; at most ``2 × workers`` chunks are in memory, whatever the file size.
- **Resumable**: each chunk's result is written as its own part file (to a temporary name, then
  renamed) next to the output; a rerun after a crash skips the parts already there, so no row
  is scored twice or lost. A fingerprint (input size and mtime, chunk size, model sha256) guards
  against resuming into parts of a different job. The parts are merged at the end.
- **Rejects, not crashes**: rows that violate the model's schema (unknown category, NaN, a
  string in a number column, a missing value) go to ``<output>.rejects.csv`` with the reason;
  the rest are scored.
- **Parallel**: ``workers`` threads score chunks concurrently (onnxruntime releases the GIL).
- A progress bar (rows/s, ETA) and a ``Summary``: rows, rejected, seconds, rows/s, peak memory.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_CHUNK_ROWS = 65_536


@dataclass(frozen=True)
class Summary:
    rows: int
    scored: int
    rejected: int
    chunks: int
    resumed_chunks: int
    seconds: float
    rows_per_s: float
    peak_rss_mb: float
    output: str
    rejects: str | None

    def as_text(self) -> str:
        return (
            f"{self.rows:,} rows ({self.scored:,} scored, {self.rejected:,} rejected) in "
            f"{self.seconds:.1f} s = {self.rows_per_s:,.0f} rows/s; {self.chunks} chunks "
            f"({self.resumed_chunks} resumed); peak memory {self.peak_rss_mb:.0f} MB "
            f"→ {self.output}"
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _peak_rss_mb() -> float:
    """This process's peak resident memory. Linux: VmHWM, because ``ru_maxrss`` survives
    ``exec`` and would report a parent's peak for a freshly started scorer."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def read_chunks(
    path: Path, chunk_rows: int, text_columns: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    """The file as DataFrames of exactly ``chunk_rows`` rows (the last may be shorter).

    For CSV, ``text_columns`` are read as text: pyarrow fixes each column's type from the first
    block, so one bad value ("noon" in an hour column) further down would otherwise abort the
    whole read. The scorer turns them back into numbers chunk by chunk and rejects what is not.
    """
    try:
        yield from _read_chunks(path, chunk_rows, text_columns)
    except Exception as error:  # pyarrow.ArrowInvalid and friends: say which file, and why
        if type(error).__module__.startswith("pyarrow"):
            raise ValueError(f"{path}: cannot read it as a table: {error}") from None
        raise


def _read_chunks(
    path: Path, chunk_rows: int, text_columns: list[str] | None
) -> Iterator[pd.DataFrame]:
    import pyarrow as pa

    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        batches: Iterator[Any] = pq.ParquetFile(path).iter_batches(batch_size=chunk_rows)
    elif suffix == ".csv":
        import pyarrow.csv as pcsv

        types = {name: pa.string() for name in text_columns or []}
        convert = pcsv.ConvertOptions(column_types=types, strings_can_be_null=True)
        batches = iter(pcsv.open_csv(path, convert_options=convert))
    else:
        raise ValueError(f"{path}: batch scoring reads .csv or .parquet files")
    pending: list[Any] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        while held >= chunk_rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, chunk_rows).to_pandas()
            rest = table.slice(chunk_rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending).to_pandas()


def _fingerprint(input_path: Path, chunk_rows: int, model_sha: str) -> dict[str, Any]:
    stat = input_path.stat()
    return {
        "input": str(input_path.resolve()),
        "bytes": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "chunk_rows": chunk_rows,
        "model_sha256": model_sha,
    }


def _score_chunk(
    predictor: Any, chunk: pd.DataFrame, number: int, parts: Path, version: str, classes: list[Any]
) -> tuple[int, int, int]:
    """Validate, predict, write ``part-NNNNNN.parquet`` (+ rejects); (number, scored, rejected)."""
    chunk = _coerce_numbers(predictor, chunk)
    problems = predictor.problems(chunk)
    bad_rows = sorted({p["row"] for p in problems if p.get("row") is not None})
    if any(p.get("row") is None for p in problems):  # a missing column: nothing can be scored
        raise ValueError(f"chunk {number}: {problems[0]['field']}: {problems[0]['message']}")
    rejected = chunk.iloc[bad_rows].copy()
    if bad_rows:
        reasons: dict[int, list[str]] = {}
        for p in problems:
            reasons.setdefault(p["row"], []).append(f"{p['field']}: {p['message']}")
        rejected["reject_reason"] = ["; ".join(reasons[r]) for r in bad_rows]
        good = chunk.drop(index=chunk.index[bad_rows])
    else:
        good = chunk
    out = good.copy()
    if len(good):
        labels, proba = predictor.predict_both(good, validate=False)
        out["prediction"] = labels
        for index, cls in enumerate(classes or range(proba.shape[1])):
            out[f"probability_{cls}"] = proba[:, index].astype(np.float32)
    out["model_version"] = version
    _atomic_parquet(out, parts / f"part-{number:06d}.parquet")
    if bad_rows:  # for people to read: text columns, so mixed bad values always fit
        _atomic_parquet(rejected.astype(str), parts / f"rejects-{number:06d}.parquet")
    return number, len(good), len(bad_rows)


def _coerce_numbers(predictor: Any, chunk: pd.DataFrame) -> pd.DataFrame:
    """A CSV block with one bad value ("noon") is read as text for the whole column. Turn the
    parseable values back into numbers and keep only the bad ones as text, so validation
    rejects those rows and not the block."""
    text_columns = [
        name
        for name, kind in predictor.input_types.items()
        if kind != "tensor(string)"
        and name in chunk.columns
        and not pd.api.types.is_numeric_dtype(chunk[name].dtype)
    ]
    if not text_columns:
        return chunk
    chunk = chunk.copy()
    for name in text_columns:
        original = chunk[name]
        numbers = pd.to_numeric(original, errors="coerce")
        keep_text = numbers.isna() & original.notna()
        mixed = numbers.astype(object)
        mixed[keep_text] = original[keep_text]
        chunk[name] = mixed
    return chunk


def _atomic_parquet(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)  # a crash leaves either the whole part or none


def _merge(parts: list[Path], output: Path) -> None:
    """Concatenate part files into ``output`` (Parquet or CSV), one part in memory at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = output.with_name(output.name + ".tmp")
    if output.suffix.lower() == ".parquet":
        # A chunk that had to be coerced may hold doubles where others hold int64: promote
        # to one schema (from the parts' footers, no data read) and cast each part to it.
        schema = pa.unify_schemas(
            [pq.read_schema(part) for part in parts], promote_options="permissive"
        )
        with pq.ParquetWriter(tmp, schema) as writer:
            for part in parts:
                writer.write_table(pq.read_table(part).cast(schema))
    else:
        with tmp.open("w") as handle:
            for number, part in enumerate(parts):
                pq.read_table(part).to_pandas().to_csv(handle, index=False, header=number == 0)
    os.replace(tmp, output)


def score_file(
    model_package: str | Path,
    input_path: str | Path,
    output_path: str | Path,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    workers: int = 1,
    rejects_path: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    max_chunks: int | None = None,
    public_key: Any = None,
) -> Summary:
    """Score ``input_path`` (CSV/Parquet) into ``output_path`` (.parquet or .csv); see module.

    ``max_chunks`` stops after that many chunks *without merging* (what a crash leaves
    behind) — for demonstrating and testing resumption. With ``public_key`` the package's
    model-signing signature is verified before the model is opened.
    """
    from course_pkg.onnx_export import OnnxPredictor

    started = time.perf_counter()
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.is_file():
        raise FileNotFoundError(f"{input_path}: no such input file")
    if output_path.suffix.lower() not in (".parquet", ".csv"):
        raise ValueError(f"{output_path}: write a .parquet or .csv file")
    if chunk_rows <= 0 or workers <= 0:
        raise ValueError("chunk_rows and workers must be positive")
    predictor = OnnxPredictor.from_package(model_package, public_key, intra_op_threads=1)
    manifest = predictor.manifest
    model_sha = manifest["files"][manifest["model_file"]]["sha256"]
    classes = list(manifest.get("output_schema", {}).get("probabilities", {}).get("classes") or [])
    parts = output_path.with_name(output_path.name + ".parts")
    fingerprint = _fingerprint(input_path, chunk_rows, model_sha)
    marker = parts / "job.json"
    if parts.exists() and resume and marker.exists():
        if json.loads(marker.read_text()) != fingerprint:
            raise ValueError(
                f"{parts} holds parts of a different job (input, chunk size or model changed); "
                "delete it or pass resume=False"
            )
    elif parts.exists():
        shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(fingerprint))
    done = {int(p.stem.split("-")[1]) for p in parts.glob("part-*.parquet")}
    total = _row_count(input_path)
    bar = _progress(total, progress)
    rows = scored = rejected = chunks = 0
    in_flight: list[Future[tuple[int, int, int]]] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:

        def collect(future: Future[tuple[int, int, int]]) -> None:
            nonlocal scored, rejected
            _, ok, bad = future.result()
            scored, rejected = scored + ok, rejected + bad

        numeric = [n for n, kind in predictor.input_types.items() if kind != "tensor(string)"]
        for number, chunk in enumerate(read_chunks(input_path, chunk_rows, numeric)):
            if max_chunks is not None and number >= max_chunks:
                break
            chunks += 1
            rows += len(chunk)
            bar.update(len(chunk))
            if number in done:
                continue
            in_flight.append(  # every input column is written through (ids!)
                pool.submit(
                    _score_chunk, predictor, chunk, number, parts, manifest["version"], classes
                )
            )
            if len(in_flight) >= 2 * workers:  # back-pressure: memory bounded by workers
                collect(in_flight.pop(0))
        for future in in_flight:
            collect(future)
    bar.close()
    if max_chunks is not None:  # simulated crash: leave the parts for a resume
        return _summary(rows, scored, rejected, chunks, len(done), started, parts, None)
    rejects = (
        Path(rejects_path)
        if rejects_path
        else output_path.with_name(output_path.stem + ".rejects.csv")
    )
    part_files = sorted(parts.glob("part-*.parquet"))
    _merge(part_files, output_path)
    reject_files = sorted(parts.glob("rejects-*.parquet"))
    if reject_files:
        _merge(reject_files, rejects)
    import pyarrow.parquet as pq

    # counted from the parts, so chunks scored before a resume are counted too
    scored_total = sum(pq.ParquetFile(p).metadata.num_rows for p in part_files)
    shutil.rmtree(parts)
    return _summary(
        rows,
        scored_total,
        rows - scored_total,
        chunks,
        len(done),
        started,
        output_path,
        rejects if reject_files else None,
    )


def _summary(
    rows: int,
    scored: int,
    rejected: int,
    chunks: int,
    resumed: int,
    started: float,
    output: Path,
    rejects: Path | None,
) -> Summary:
    seconds = time.perf_counter() - started
    return Summary(
        rows=rows,
        scored=scored,
        rejected=rejected,
        chunks=chunks,
        resumed_chunks=resumed,
        seconds=round(seconds, 3),
        rows_per_s=round(rows / seconds, 1) if seconds else 0.0,
        peak_rss_mb=round(_peak_rss_mb(), 1),
        output=str(output),
        rejects=str(rejects) if rejects else None,
    )


def _row_count(path: Path) -> int | None:
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return None  # CSV: unknown without reading it; the bar shows rows/s without an ETA


def _progress(total: int | None, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="rows", unit_scale=True, disable=not enabled, smoothing=0.1)
