"""How fast does the sandboxed grader go, and what does the sandbox cost?

    .venv/bin/python benchmarks/grader_bench.py [--copies 4] [--assignment 02]
    .venv/bin/python benchmarks/grader_bench.py --batch 100 --jobs 2   # the CLI, end to end

Grades N copies of the full solution with 1 and then 2 parallel jobs (real containers), and
executes the same notebook directly with nbclient on the host (no container, no probes; without
the spec's demo cells, which the runner skips too). Prints
per-submission wall time, overhead = container wall time − direct nbclient time (all cores),
submissions per hour, and where one submission's time goes. With ``--batch N`` it instead
runs ``grader grade --jobs J`` (the real CLI: intake, containers, results, gradebook) on N
copies and reports the batch's wall time. Needs `make grader-image`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from grader.grading import grade
from grader.runner.docker_backend import run_docker
from grader.runner.inside import source_digest
from grader.runner.protocol import demo_cell_digests
from grader.samples import full_solution
from grader.specs import load_assignment
from grader.specs.model import Assignment


def direct_seconds(path: Path, repeats: int, cpus: str | None = None) -> float:
    """Median nbclient run of the notebook on the host (pinned to ``cpus`` when given)."""
    import os

    if cpus:
        previous = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    try:
        return _direct(path, repeats)
    finally:
        if cpus:
            os.sched_setaffinity(0, previous)


def _direct(path: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        notebook = nbformat.read(path, as_version=4)
        with tempfile.TemporaryDirectory() as work:
            started = time.perf_counter()
            NotebookClient(
                notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": work}}
            ).execute()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def without_demo_cells(notebook: nbformat.NotebookNode, spec: Assignment) -> nbformat.NotebookNode:
    skip = set(demo_cell_digests(spec.notebook, spec.demo_cells))
    notebook.cells = [c for c in notebook.cells if source_digest(c.source) not in skip]
    return notebook


def cli_batch(spec_id: str, notebook: str, count: int, jobs: int) -> None:
    """``grader grade`` on ``count`` copies of the full solution: wall time and statuses."""
    import csv
    import subprocess
    import sys

    folder = Path(tempfile.mkdtemp(prefix="grader-batch-"))
    submissions, out = folder / "in", folder / "out"
    submissions.mkdir()
    text = nbformat.writes(full_solution(notebook))
    for i in range(count):
        (submissions / f"s{i:03d}.ipynb").write_text(text)
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader.cli",
            "grade",
            str(submissions),
            "--assignment",
            spec_id,
            "--out",
            str(out),
            "--jobs",
            str(jobs),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    rows = list(csv.DictReader((out / "gradebook.csv").read_text().splitlines()))
    statuses = {r["status"] for r in rows}
    print(
        f"grader grade --jobs {jobs}: {count} submissions in {wall:.0f} s "
        f"({wall / count:.2f} s each, {3600 * count / wall:.0f}/hour), exit {done.returncode}, "
        f"statuses {sorted(statuses)}"
    )
    shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--assignment", default="02")
    parser.add_argument("--batch", type=int, help="grade N copies through the CLI instead")
    parser.add_argument("--jobs", type=int, default=2, help="with --batch")
    args = parser.parse_args()
    spec = load_assignment(args.assignment)
    if args.batch:
        cli_batch(args.assignment, spec.notebook, args.batch, args.jobs)
        return
    folder = Path(tempfile.mkdtemp(prefix="grader-bench-"))
    source = folder / "full.ipynb"
    nbformat.write(full_solution(spec.notebook), source)
    copies = []
    for i in range(args.copies):
        copies.append(folder / f"s{i:03d}.ipynb")
        shutil.copy(source, copies[-1])

    # the floor does the grader's work: the spec's demo cells, which the runner skips, go
    floor = folder / "floor.ipynb"
    nbformat.write(without_demo_cells(nbformat.read(source, as_version=4), spec), floor)
    direct = direct_seconds(floor, repeats=2)
    one_cpu = direct_seconds(floor, repeats=2, cpus="0")
    print(
        f"direct nbclient on the host: {direct:.2f} s on all cores, {one_cpu:.2f} s on 1 core "
        "(the container gets 1 CPU)"
    )
    header = ("jobs", 4), ("subs", 5), ("batch s", 8), ("per sub s", 9), ("overhead s", 10)
    print(" ".join(f"{name:>{width}}" for name, width in header), f"{'subs/hour':>9}")
    for jobs in (1, 2):
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(lambda p: grade(p, spec), copies))
        batch = time.perf_counter() - started
        assert all(r.status == "ok" and r.score == spec.total_points for r in results), results
        per_sub = statistics.median(r.seconds for r in results)
        print(
            f"{jobs:>4} {len(copies):>5} {batch:>8.1f} {per_sub:>9.2f} "
            f"{per_sub - direct:>10.2f} {3600 * len(copies) / batch:>9.0f}"
        )

    raw = run_docker(copies[0], spec)
    assert raw.result is not None
    inside, probes = raw.result["notebook_seconds"], raw.result["probe_seconds"]
    print(
        f"one run, broken down: {raw.seconds:.2f} s = notebook in the container {inside:.2f} s"
        f" + probes {probes:.2f} s + container, runner and kernel start/stop "
        f"{raw.seconds - inside - probes:.2f} s"
    )


if __name__ == "__main__":
    main()
