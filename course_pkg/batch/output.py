"""Where a batch job's rows end up: a Parquet dataset of parts, published by one rename.

A ``.parquet`` output is a *directory* of ``part-*.parquet`` files (a Parquet dataset:
``pd.read_parquet``, ``pyarrow.dataset``, Spark, DuckDB and Ray read it as one table). The
parts are written into ``<out>.parts/`` while the job runs (so a crash leaves whole parts to
resume from, and no half-written output) and the directory is renamed to ``<out>`` at the end:
nothing is re-read or re-written. A ``.csv`` output is one file, streamed from the parts.

Rejects are written next to the parts (``_rejects/``, which dataset readers skip because of the
leading underscore) and gathered into ``<out>.rejects.csv`` at the end; there are few of them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PART_GLOB = "part-*.parquet"
REJECTS_DIR = "_rejects"
JOB_FILE = "_job.json"


def staging_dir(output: Path) -> Path:
    return output.with_name(output.name + ".parts")


def default_rejects(output: Path) -> Path:
    return output.with_name(output.stem + ".rejects.csv")


def write_part(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` via a temporary name: a crash leaves the whole part or none."""
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def check_replaceable(output: Path) -> None:
    """Refuse to replace anything but a file or a dataset a batch job wrote (its parts only)."""
    if output.is_symlink():
        raise ValueError(f"{output} is a symlink; write to a real path")
    if output.is_dir():
        strangers = [p.name for p in output.iterdir() if not p.match(PART_GLOB)]
        if strangers:
            raise ValueError(
                f"{output} is a directory with other files in it ({', '.join(strangers[:3])}); "
                "it is not a dataset of parts a batch job wrote. Choose another --out"
            )


def publish(staging: Path, output: Path, rejects: Path) -> tuple[int, Path | None]:
    """Turn the finished staging directory into ``output`` (+ rejects); (scored rows, rejects)."""
    parts = sorted(staging.glob(PART_GLOB))
    scored = sum(pq.ParquetFile(part).metadata.num_rows for part in parts)
    reject_parts = sorted((staging / REJECTS_DIR).glob("*.parquet"))
    wrote_rejects = _write_csv(reject_parts, rejects) if reject_parts else None
    shutil.rmtree(staging / REJECTS_DIR, ignore_errors=True)
    (staging / JOB_FILE).unlink(missing_ok=True)
    check_replaceable(output)
    if output.suffix.lower() == ".csv":
        _write_csv(parts, output)
        shutil.rmtree(staging)
    else:
        if output.is_dir():
            shutil.rmtree(output)
        elif output.exists():
            output.unlink()
        os.replace(staging, output)
    return scored, wrote_rejects


def _write_csv(parts: list[Path], target: Path) -> Path:
    """Concatenate parts into one CSV, one part in memory at a time; schemas are unified so a
    part with doubles and one with integers land in one file."""
    import pyarrow.csv as pcsv

    schema = pa.unify_schemas([pq.read_schema(p) for p in parts], promote_options="permissive")
    tmp = target.with_name(target.name + ".tmp")
    with pcsv.CSVWriter(tmp, schema) as writer:
        for part in parts:
            writer.write_table(pq.read_table(part).cast(schema))
    os.replace(tmp, target)
    return target
