"""Which grading containers belong to which run: labels, removal on Ctrl-C, reaping at start.

Every container a ``grader`` process starts carries ``course-grader.run=<run id>`` plus the
host name, pid and pid start time of that process. So a run can remove exactly its own
containers when it is interrupted, and a later run can tell a container whose grader died
(the pid is gone, or belongs to another process now) from one of a run still going — even
when several graders, or several checkouts, share one Docker engine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import uuid
from dataclasses import dataclass

LABEL = "course-grader.run"
HOST_LABEL = "course-grader.host"
PID_LABEL = "course-grader.pid"
STARTED_LABEL = "course-grader.pid-started"

# Set when the run is being stopped (SIGINT/SIGTERM): no new container starts, results of
# containers that were removed are thrown away instead of being graded as crashes.
STOPPING = threading.Event()


class Interrupted(Exception):
    """The run was stopped (SIGINT/SIGTERM) while this submission was being graded."""


def _pid_started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[19]


@dataclass(frozen=True)
class RunId:
    value: str

    @classmethod
    def new(cls) -> RunId:
        return cls(os.environ.get("COURSE_GRADER_RUN_ID") or uuid.uuid4().hex[:16])

    def docker_args(self) -> list[str]:
        labels = {
            LABEL: self.value,
            HOST_LABEL: socket.gethostname(),
            PID_LABEL: str(os.getpid()),
            STARTED_LABEL: _pid_started(os.getpid()) or "",
        }
        return [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]


# One id per grader process unless a caller (a test) passes its own.
CURRENT = RunId.new()


def _containers(filters: list[str]) -> list[dict[str, str]]:
    command = ["docker", "ps", "-a", "--format", "{{.ID}}\t{{.Labels}}"]
    for item in filters:
        command += ["--filter", item]
    listing = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    rows = []
    for line in listing.stdout.splitlines():
        ident, _, labels = line.partition("\t")
        pairs = dict(item.partition("=")[::2] for item in labels.split(",") if "=" in item)
        rows.append({"id": ident, **pairs})
    return rows


def run_containers(run: RunId) -> list[str]:
    return [row["id"] for row in _containers([f"label={LABEL}={run.value}"])]


def remove(ids: list[str]) -> None:
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False, timeout=120)


def remove_run(run: RunId) -> int:
    """Force-remove every container of ``run``; how many there were."""
    ids = run_containers(run)
    remove(ids)
    return len(ids)


def stale_containers() -> list[str]:
    """Containers of grader runs on this host whose grader process is gone."""
    host = socket.gethostname()
    stale = []
    for row in _containers([f"label={LABEL}", f"label={HOST_LABEL}={host}"]):
        pid = row.get(PID_LABEL, "")
        alive = pid.isdigit() and _pid_started(int(pid)) == row.get(STARTED_LABEL)
        if not alive:
            stale.append(row["id"])
    return stale


def reap_stale() -> int:
    """Remove containers left by crashed runs on this host; how many were removed."""
    ids = stale_containers()
    remove(ids)
    return len(ids)
