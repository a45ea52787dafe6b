"""The host side of the runner protocol: build the job, verify the signed result frame."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from grader.specs.model import Assignment, forbidden

FRAME = "GRADER-RESULT "
MAX_STDOUT_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Job:
    payload: str  # one JSON line for the runner's stdin
    key: bytes


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
        "cell_timeout": assignment.cell_timeout,
        "key": key,
    }
    return Job(json.dumps(job) + "\n", key.encode())


def parse_frame(stdout: bytes, key: bytes) -> dict[str, Any] | None:
    """The runner's result if a frame with a valid HMAC is present, else None.

    The *last* valid frame wins; frames with a bad signature (printed by student code that
    guessed the format) are ignored.
    """
    result = None
    for line in stdout.decode("utf-8", "replace").splitlines():
        if not line.startswith(FRAME):
            continue
        signature, _, payload = line[len(FRAME) :].partition(" ")
        expected = hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()
        if hmac.compare_digest(signature, expected):
            try:
                result = json.loads(payload)
            except json.JSONDecodeError:
                continue
    return result


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
    return _STATUS.get(notebook, "crashed")
