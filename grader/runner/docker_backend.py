"""Run one submission in a fresh, locked-down container.

Flags (see docs/GRADING.md): --network none, non-root uid 10001, read-only root, tmpfs /work
and /tmp (size-capped), memory = memory+swap limit, CPU and pids limits, all capabilities
dropped, no-new-privileges, no log driver (nothing is stored on the host's disk), the
submission bind-mounted read-only, a wall-clock limit enforced from outside (docker kill),
and stdout read with a byte cap. The container is always removed, and carries its run's
labels (grader.runner.containers) so Ctrl-C or a later run can remove it.

The submission path must be the grader's private copy (grader.intake): a path the grader
created, so no student-chosen name, colon or undecodable byte ever reaches ``-v``. The
``docker run`` client runs in its own session: a Ctrl-C in the terminal reaches only the
grader, which removes the containers itself instead of leaving them to signal proxying.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.runner.containers import CURRENT, STOPPING, Interrupted, RunId
from grader.runner.protocol import MAX_STDOUT_BYTES, make_job, parse_frame, submission_status
from grader.specs.model import Assignment

# COURSE_GRADER_IMAGE lets two checkouts on one engine keep their own grading image.
DEFAULT_IMAGE = os.environ.get("COURSE_GRADER_IMAGE", "course-grader:latest")
WORK_TMPFS_MB = 64


@dataclass(frozen=True)
class RawRun:
    status: str  # ok | timeout | memory | crashed | output-limit | invalid-notebook | error
    result: dict[str, Any] | None
    seconds: float
    detail: str = ""


def _capped_reader(stream: Any, cap: int, sink: bytearray, flag: dict[str, bool]) -> None:
    while True:
        chunk = stream.read(65536)
        if not chunk:
            return
        if len(sink) < cap:
            sink.extend(chunk[: cap - len(sink)])
        else:
            flag["overflow"] = True  # keep draining so the container never blocks on a pipe


def run_docker(
    submission: Path,
    assignment: Assignment,
    image: str = DEFAULT_IMAGE,
    timeout: int | None = None,
    run: RunId = CURRENT,
) -> RawRun:
    if STOPPING.is_set():
        raise Interrupted
    name = f"grade-{uuid.uuid4().hex[:12]}"
    job = make_job(assignment, "/submission/notebook.ipynb")
    wall = timeout or assignment.wall_timeout
    command = [
        "docker",
        "run",
        "--rm",
        "-i",
        "--name",
        name,
        *run.docker_args(),
        "--network",
        "none",
        "--log-driver",
        "none",
        "--user",
        "10001:10001",
        "--read-only",
        "--tmpfs",
        f"/work:size={WORK_TMPFS_MB}m,uid=10001,gid=10001,mode=0700",
        "--tmpfs",
        f"/tmp:size={WORK_TMPFS_MB}m,mode=1777",
        "--memory",
        assignment.memory,
        "--memory-swap",
        assignment.memory,
        "--cpus",
        str(assignment.cpus),
        "--pids-limit",
        str(assignment.pids),
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "-v",
        f"{submission.resolve()}:/submission/notebook.ipynb:ro",
        image,
    ]
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    out, err, flag = bytearray(), bytearray(), {"overflow": False}
    readers = [
        threading.Thread(target=_capped_reader, args=(process.stdout, MAX_STDOUT_BYTES, out, flag)),
        threading.Thread(target=_capped_reader, args=(process.stderr, 65536, err, {})),
    ]
    for reader in readers:
        reader.start()
    assert process.stdin is not None
    try:
        process.stdin.write(job.payload.encode())
        process.stdin.close()
    except BrokenPipeError:
        pass
    timed_out = False
    try:
        process.wait(timeout=wall)
    except subprocess.TimeoutExpired:
        timed_out = True
        subprocess.run(["docker", "kill", name], capture_output=True, check=False)
        process.wait(timeout=60)
    for reader in readers:
        reader.join(timeout=30)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()
    seconds = round(time.monotonic() - started, 2)
    if STOPPING.is_set():
        raise Interrupted  # removed by the run's signal handler: not this submission's fault
    result = parse_frame(bytes(out), job.key)

    if timed_out:
        return RawRun("timeout", result, seconds, f"killed after the {wall} s wall-clock limit")
    if flag["overflow"] and result is None:
        return RawRun(
            "output-limit", None, seconds, f"more than {MAX_STDOUT_BYTES} bytes on stdout"
        )
    if process.returncode == 125 or (result is None and b"docker:" in err):
        return RawRun("error", None, seconds, err.decode("utf-8", "replace")[-500:])
    if result is None:
        # 137 = SIGKILL: the memory cgroup killed the runner itself.
        status = "memory" if process.returncode == 137 else "crashed"
        return RawRun(status, None, seconds, f"runner exited {process.returncode} without a result")
    if not result["complete"]:
        # killed after the notebook ran: probes framed so far are kept and scored
        return RawRun("crashed", result, seconds, f"runner exited {process.returncode} early")
    status = submission_status(result)
    return RawRun(status, result, seconds, str(result.get("detail") or "")[:300])
