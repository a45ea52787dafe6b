"""The host side of the runner protocol: build the job, verify the signed result frame."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from functools import cache
from typing import Any

from grader.runner.inside import source_digest
from grader.specs.model import Assignment, forbidden

FRAME = "GRADER-RESULT "
MAX_STDOUT_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Job:
    payload: str  # one JSON line for the runner's stdin
    key: bytes


@cache
def demo_cell_digests(notebook: str, cell_ids: tuple[str, ...]) -> tuple[str, ...]:
    """The digests of the solution's demonstration cells ``cell_ids`` (the runner skips a
    cell with the same source); a missing id or a markdown cell is a spec error."""
    if not cell_ids:
        return ()
    import nbformat

    from course_pkg import paths

    cells = {c.get("id"): c for c in nbformat.read(paths.SOLUTIONS / notebook, as_version=4).cells}
    digests = []
    for cell_id in cell_ids:
        cell = cells.get(cell_id)
        if cell is None or cell.cell_type != "code":
            raise ValueError(f"{notebook}: demo cell {cell_id!r} is not a solution code cell")
        digests.append(source_digest(cell.source))
    return tuple(digests)


def make_job(assignment: Assignment, notebook_path: str, work_dir: str = "/work") -> Job:
    key = secrets.token_hex(32)
    job = {
        "notebook": notebook_path,
        "work_dir": work_dir,
        "probes": [
            {
                "id": q.id,
                "code": q.probe,
                "answers": list(q.answers),
                "forbidden": list(forbidden(assignment.id, q.id)),
            }
            for q in assignment.questions
        ],
        "skip_sources": list(demo_cell_digests(assignment.notebook, assignment.demo_cells)),
        "cell_timeout": assignment.cell_timeout,
        "probe_timeout": assignment.probe_timeout or assignment.cell_timeout,
        "key": key,
    }
    return Job(json.dumps(job) + "\n", key.encode())


def parse_frame(stdout: bytes, key: bytes) -> dict[str, Any] | None:
    """The runner's result assembled from the frames with a valid HMAC, else None.

    Summary frames (``{"notebook": …}``): the last valid one wins. Probe frames
    (``{"probe": id, "result": {…}}``) are collected into ``probes``, so the answers framed
    before the container was killed still count. Frames with a bad signature (printed by
    student code that guessed the format) are ignored. ``complete`` is true only when the
    runner's final frame arrived.
    """
    summary: dict[str, Any] | None = None
    probes: dict[str, Any] = {}
    for line in stdout.decode("utf-8", "replace").splitlines():
        if not line.startswith(FRAME):
            continue
        signature, _, payload = line[len(FRAME) :].partition(" ")
        expected = hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            continue
        try:
            frame = json.loads(payload)
        except json.JSONDecodeError:
            continue
        if not isinstance(frame, dict):
            continue
        if "probe" in frame and isinstance(frame.get("result"), dict):
            probes[str(frame["probe"])] = frame["result"]
        elif "notebook" in frame:
            summary = frame
            probes.update(frame.get("probes") or {})
    if summary is None:
        return None
    return {**summary, "probes": probes, "complete": bool(summary.get("complete"))}


# What the runner reports about the notebook → the submission's status in the gradebook.
_STATUS = {
    "ok": "ok",
    "timeout": "timeout",
    "output-limit": "output-limit",
    "invalid-notebook": "invalid-notebook",
    "runner-error": "error",
}


def submission_status(result: dict[str, Any]) -> str:
    """The gradebook status for a verified runner result (unknown states count as crashed)."""
    notebook = result.get("notebook", "ok")
    if notebook == "kernel-died" and (result.get("oom_kills") or 0) > 0:
        return "memory"  # the memory cgroup killed the kernel (a plain SIGKILL stays "crashed")
    status = _STATUS.get(notebook, "crashed")
    died = result.get("probe_kernel_died")
    if status == "ok" and died is not None:
        killed = (result.get("probes") or {}).get(died, {}).get("status") == "memory"
        return "memory" if killed else "crashed"  # the kernel died during a probe
    return status
