"""The Ray engine: the same job on Ray Data, for data that outgrows one machine.

    read_parquet / read_csv → map_batches(actor pool of _PackageScorer) → write_parquet

- **The package travels as bytes.** The driver verifies it (``score_file``, before anything
  starts), reads its files and hands them to each actor through the object store; the actor
  writes them to its own temporary directory and verifies them again with
  ``OnnxPredictor.from_package`` (hashes, and the signature with a public key), then loads the
  model once and scores every batch it is given. Worker nodes need no copy of the package.
- **Same rows out.** Each batch goes through ``ChunkScorer`` (same validation, rejects and
  columns as the local engine); ``preserve_order`` keeps the input order — while every
  node stays up. When a node is lost mid-job, Ray re-runs its tasks and every row still
  lands exactly once, but the re-run blocks' parts can be named after later ones, so the
  output's row order may differ (seen on a loaded 2-core machine: the last part held
  rows from the middle). Sort by a key column when order matters.
- **Rejects** are written by the actors as side files named by their content's sha256, so a
  batch retried after a node failure rewrites the same file instead of adding a copy.
- **Output**: ``write_parquet`` into ``<out>.parts/`` with deterministic part names, then
  ``output.publish`` renames it to ``<out>`` like the local engine. The paths must be visible to
  every node (one machine, or a shared volume on a cluster).
- **Local runtime** (no ``address``): Ray on 127.0.0.1, no dashboard, usage stats off, so no
  traffic leaves loopback. With ``address`` it joins an existing cluster (``ray start …``,
  KubeRay: deploy/ray/).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from course_pkg.batch.chunk_scoring import ChunkScorer
from course_pkg.batch.output import PART_GLOB, REJECTS_DIR, publish, staging_dir, write_part
from course_pkg.batch.reading import csv_convert_options
from course_pkg.batch.summary import Summary, make_summary

# Ray reads these at import/init: nothing is reported to Ray's usage-stats server.
_QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_USAGE_STATS_PROMPT_ENABLED": "0"}
# A private runtime: Ray otherwise swaps 127.0.0.1 for the machine's routable address and its
# gRPC servers listen on every interface. With this (read when ``ray`` is imported) the node
# is 127.0.0.1 and every Ray port listens on loopback only (checked with ``ss -ltn``).
_LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
# The raylet gives its Python agents 15 s (default) to report their ports and aborts after; on a
# busy 2-core laptop their imports alone can take longer (measured here: 16-40 s under load).
SLOW_MACHINE_ENV = {
    "RAY_agent_register_timeout_ms": "120000",
    "RAY_raylet_start_wait_time_s": "120",
}


def score_on_ray(
    package: Path,
    scorer: ChunkScorer,
    input_path: Path,
    output_path: Path,
    rejects_path: Path,
    *,
    chunk_rows: int,
    actors: int,
    address: str | None,
    public_key: Any,
    progress: bool,
    started: float,
) -> Summary:
    if output_path.suffix.lower() != ".parquet":
        raise ValueError(
            f"{output_path}: the Ray engine writes a Parquet dataset; use --out NAME.parquet"
        )
    prepare_environment(local=address is None)
    import ray

    files = package_files(package)
    key = _public_key_pem(public_key)
    staging = staging_dir(output_path)
    if staging.exists():
        shutil.rmtree(staging)
    (staging / REJECTS_DIR).mkdir(parents=True)
    owns_runtime = not ray.is_initialized()
    if owns_runtime:
        connect(address, cpus=actors + 1)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = progress
        context.execution_options.preserve_order = True
        if input_path.suffix.lower() == ".csv":
            dataset = ray.data.read_csv(
                str(input_path.resolve()), convert_options=csv_convert_options(scorer.numeric)
            )
        else:
            dataset = ray.data.read_parquet(str(input_path.resolve()))
        scored = dataset.map_batches(
            _PackageScorer,
            fn_constructor_args=(files, key, str((staging / REJECTS_DIR).resolve())),
            batch_size=chunk_rows,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=1,
        )
        scored.write_parquet(str(staging.resolve()), filename_provider=_part_names())
    finally:
        if owns_runtime:
            ray.shutdown()
    parts = len(list(staging.glob(PART_GLOB)))
    rejected = sum(
        pq.ParquetFile(p).metadata.num_rows for p in (staging / REJECTS_DIR).glob("*.parquet")
    )
    scored_rows, rejects = publish(staging, output_path, rejects_path)
    return make_summary(
        rows=scored_rows + rejected,
        scored=scored_rows,
        rejected=rejected,
        chunks=parts,
        resumed=0,
        started=started,
        output=output_path,
        rejects=rejects,
    )


def prepare_environment(*, local: bool) -> None:
    """Usage stats off; for a private runtime, loopback only. Call before ``import ray``."""
    os.environ.update(_QUIET_ENV)
    for name, value in SLOW_MACHINE_ENV.items():
        os.environ.setdefault(name, value)
    if local:
        os.environ.update(_LOOPBACK_ENV)


def connect(address: str | None, cpus: int) -> None:
    """Join the cluster at ``address``, or start a private Ray runtime on 127.0.0.1."""
    import logging

    import ray

    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        ray.init(address=address, **quiet)  # type: ignore[arg-type]
        return
    for attempt in (1, 2):  # Ray allows a raylet 30 s to register; a busy laptop can miss it
        try:
            ray.init(
                address="local",  # never an existing cluster named by RAY_ADDRESS
                num_cpus=cpus,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                **quiet,  # type: ignore[arg-type]
            )
            break
        except Exception as error:
            ray.shutdown()
            if attempt == 2 or "timed out during startup" not in str(error):
                raise
    node_ip = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
    if node_ip != "127.0.0.1":  # ray was imported before _LOOPBACK_ENV could take effect
        ray.shutdown()
        raise RuntimeError(
            f"the local Ray runtime came up on {node_ip}, not 127.0.0.1: set "
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before `import ray`, or pass address="
        )


def package_files(package: Path) -> dict[str, bytes]:
    """The package's regular files by relative path (symlinks are not followed: they would
    ship files from outside the package; verification on the actor then refuses the gap)."""
    files = {}
    for path in sorted(package.rglob("*")):
        if path.is_file() and not path.is_symlink():
            files[path.relative_to(package).as_posix()] = path.read_bytes()
    return files


def _public_key_pem(public_key: Any) -> bytes | None:
    """The key as PEM bytes (what ``load_public_key`` makes of a path, PEM or key object):
    bytes cross to the actors as they are, and the actors verify with them."""
    if public_key is None:
        return None
    from course_pkg.artifacts import load_public_key

    pem: bytes = load_public_key(public_key).pem
    return pem


class _PackageScorer:
    """A Ray Data actor: verifies and loads the package once, then scores batches."""

    def __init__(self, files: dict[str, bytes], public_key: bytes | None, rejects: str) -> None:
        from course_pkg.onnx_export import OnnxPredictor

        root = Path(tempfile.mkdtemp(prefix="course-batch-package-"))
        for name, data in files.items():
            relative = PurePosixPath(name)
            if relative.is_absolute() or ".." in relative.parts:
                raise ValueError(f"package file {name!r} points outside the package")
            target = root.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        predictor = OnnxPredictor.from_package(root, public_key, intra_op_threads=1)
        self.scorer = ChunkScorer(predictor)
        self.rejects = Path(rejects)

    def __call__(self, batch: pa.Table) -> pa.Table:
        result = self.scorer.score(batch, where="batch")
        if result.rejects is not None:
            digest = _table_digest(result.rejects)
            write_part(result.rejects, self.rejects / f"rejects-{digest}.parquet")
        return result.output


def _table_digest(table: pa.Table) -> str:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()[:32]


def _part_names() -> Any:
    """``part-<task>-<write uuid>.parquet``: deterministic per write task (a retried task
    overwrites its own file), in input order by name, and named like the local engine's parts
    (``output.check_replaceable``)."""
    from ray.data.datasource import FilenameProvider

    class PartNames(FilenameProvider):
        def get_filename_for_task(self, write_uuid: str, task_index: int) -> str:
            return f"part-{task_index:06d}-{write_uuid}.parquet"

    return PartNames(file_format="parquet")
