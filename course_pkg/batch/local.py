"""The local engine: chunks of one file scored on threads of this machine, written as parts.

- **Streaming**: pyarrow reads the input in batches, re-cut into tables of exactly
  ``chunk_rows`` rows; at most ``2 × workers`` chunks are in memory, whatever the file size.
- **Resumable**: each chunk's result is written as its own part file (temporary name, then
  rename) in ``<out>.parts/``; a rerun after a crash skips the parts already there, so no row
  is scored twice or lost. A fingerprint (input size and mtime, chunk size, model sha256) guards
  against resuming into parts of a different job. The finished directory is renamed to
  ``<out>`` (a Parquet dataset; ``output.py``), so nothing is re-read or merged.
- **Parallel**: ``workers`` threads score chunks concurrently; onnxruntime, Parquet writing and
  Arrow compute release the GIL.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from course_pkg.batch.chunk_scoring import ChunkScorer
from course_pkg.batch.output import (
    JOB_FILE,
    PART_GLOB,
    REJECTS_DIR,
    publish,
    staging_dir,
    write_part,
)
from course_pkg.batch.reading import read_tables, row_count
from course_pkg.batch.summary import Summary, make_summary, progress_bar


def score_locally(
    scorer: ChunkScorer,
    input_path: Path,
    output_path: Path,
    rejects_path: Path,
    *,
    chunk_rows: int,
    workers: int,
    resume: bool,
    progress: bool,
    max_chunks: int | None,
    started: float,
) -> Summary:
    """Score on ``workers`` threads; ``max_chunks`` stops after that many chunks *without
    publishing* (what a crash leaves behind), for demonstrating and testing resumption."""
    parts = staging_dir(output_path)
    done = _prepare_parts(parts, _fingerprint(input_path, chunk_rows, scorer), resume)
    bar = progress_bar(row_count(input_path), progress)
    rows = scored = rejected = chunks = 0
    in_flight: list[Future[tuple[int, int]]] = []

    def collect(future: Future[tuple[int, int]]) -> None:
        nonlocal scored, rejected
        ok, bad = future.result()
        scored, rejected = scored + ok, rejected + bad

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for number, table in enumerate(read_tables(input_path, chunk_rows, scorer.numeric)):
            if max_chunks is not None and number >= max_chunks:
                break
            chunks += 1
            rows += table.num_rows
            bar.update(table.num_rows)
            if number in done:
                continue
            in_flight.append(pool.submit(_score_part, scorer, table, number, parts))
            if len(in_flight) >= 2 * workers:  # back-pressure: memory bounded by workers
                collect(in_flight.pop(0))
        for future in in_flight:
            collect(future)
    bar.close()
    if max_chunks is not None:  # simulated crash: leave the parts for a resume
        return make_summary(
            rows=rows,
            scored=scored,
            rejected=rejected,
            chunks=chunks,
            resumed=len(done),
            started=started,
            output=parts,
            rejects=None,
        )
    # counted from the parts, so chunks scored before a resume are counted too
    scored_total, rejects = publish(parts, output_path, rejects_path)
    return make_summary(
        rows=rows,
        scored=scored_total,
        rejected=rows - scored_total,
        chunks=chunks,
        resumed=len(done),
        started=started,
        output=output_path,
        rejects=rejects,
    )


def _score_part(scorer: ChunkScorer, table: Any, number: int, parts: Path) -> tuple[int, int]:
    result = scorer.score(table, where=f"chunk {number}")
    if result.rejects is not None:  # before the part: a part on disk means "chunk done"
        write_part(result.rejects, parts / REJECTS_DIR / f"rejects-{number:06d}.parquet")
    write_part(result.output, parts / f"part-{number:06d}.parquet")
    return result.output.num_rows, result.rejected


def _fingerprint(input_path: Path, chunk_rows: int, scorer: ChunkScorer) -> dict[str, Any]:
    stat = input_path.stat()
    manifest = scorer.predictor.manifest
    return {
        "input": str(input_path.resolve()),
        "bytes": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "chunk_rows": chunk_rows,
        "model_sha256": manifest["files"][manifest["model_file"]]["sha256"],
    }


def _prepare_parts(parts: Path, fingerprint: dict[str, Any], resume: bool) -> set[int]:
    """The staging directory, ready; the chunk numbers already done (when resuming)."""
    marker = parts / JOB_FILE
    if parts.exists() and resume and marker.exists():
        if json.loads(marker.read_text()) != fingerprint:
            raise ValueError(
                f"{parts} holds parts of a different job (input, chunk size or model changed); "
                "delete it or pass resume=False (--no-resume)"
            )
    elif parts.exists():
        shutil.rmtree(parts)
    (parts / REJECTS_DIR).mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(fingerprint))
    return {int(p.stem.split("-")[1]) for p in parts.glob(PART_GLOB)}
