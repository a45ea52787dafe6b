"""Batch scoring: a big CSV/Parquet file through the ONNX model, on one machine or a cluster.

    summary = score_file("build/fraud", "build/transactions.parquet", "build/scored.parquet")
    course-pkg batch-score build/fraud build/transactions.parquet --out build/scored.parquet
    course-pkg batch-score build/fraud data.parquet --out scored.parquet --engine ray

The engine seam: ``score_file`` verifies the package (hashes, signature) and checks the paths
once, then hands the job to an engine:

- ``local`` (``local.py``): threads of this process, resumable part files, a progress bar;
- ``ray`` (``ray_engine.py``): Ray Data, ``read_parquet``/``read_csv`` → ``map_batches`` on an
  actor pool (each actor verifies and loads the package once) → ``write_parquet``; a local Ray
  runtime on 127.0.0.1, or an existing cluster (``address``).

Both score each chunk with ``chunk_scoring.ChunkScorer`` (same validation, same rejects, same
output columns) and publish the same way (``output.py``): a ``.parquet`` output is a Parquet
dataset (a directory of parts), rejects go to ``<out>.rejects.csv`` with a ``reject_reason``,
and the job ends with the same ``Summary`` line.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from course_pkg.batch.reading import SUFFIXES, read_chunks, read_tables
from course_pkg.batch.summary import Summary, peak_rss_mb

DEFAULT_CHUNK_ROWS = 65_536
ENGINES = ("local", "ray")

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "ENGINES",
    "Summary",
    "peak_rss_mb",
    "read_chunks",
    "read_tables",
    "score_file",
]


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
    engine: Literal["local", "ray"] = "local",
    address: str | None = None,
    public_key: Any = None,
) -> Summary:
    """Score ``input_path`` (CSV/Parquet) into ``output_path`` (.parquet dataset or .csv).

    ``workers``: threads (local) or actors (ray). ``max_chunks`` (local only) stops after that
    many chunks without publishing (what a crash leaves behind), for testing resumption.
    ``public_key`` also checks the package's signature. See the module docstring.
    """
    from course_pkg.batch.chunk_scoring import ChunkScorer
    from course_pkg.batch.output import check_replaceable, default_rejects
    from course_pkg.onnx_export import OnnxPredictor

    started = time.perf_counter()
    input_path, output_path = Path(input_path), Path(output_path)
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r}: choose {' or '.join(ENGINES)}")
    if not input_path.is_file():
        raise FileNotFoundError(f"{input_path}: no such input file")
    if input_path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"{input_path}: batch scoring reads .parquet or .csv files")
    if output_path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"{output_path}: write a .parquet or .csv file")
    if chunk_rows <= 0 or workers <= 0:
        raise ValueError("chunk_rows and workers must be positive")
    check_replaceable(output_path)
    # verified here, before any chunk is read or any Ray task is started
    predictor = OnnxPredictor.from_package(model_package, public_key, intra_op_threads=1)
    scorer = ChunkScorer(predictor)
    rejects = Path(rejects_path) if rejects_path else default_rejects(output_path)
    if engine == "ray":
        from course_pkg.batch.ray_engine import score_on_ray

        if max_chunks is not None:
            raise ValueError("max_chunks simulates a crash of the local engine only")
        return score_on_ray(
            Path(model_package),
            scorer,
            input_path,
            output_path,
            rejects,
            chunk_rows=chunk_rows,
            actors=workers,
            address=address,
            public_key=public_key,
            progress=progress,
            started=started,
        )
    if address is not None:
        raise ValueError("address= is for engine='ray' (the local engine runs in this process)")
    from course_pkg.batch.local import score_locally

    return score_locally(
        scorer,
        input_path,
        output_path,
        rejects,
        chunk_rows=chunk_rows,
        workers=workers,
        resume=resume,
        progress=progress,
        max_chunks=max_chunks,
        started=started,
    )
