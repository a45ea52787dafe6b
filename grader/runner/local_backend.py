"""Run a submission on this machine, without a sandbox — for a student's own preview only.

The notebook runs with the student's own permissions: it can read and write their files and
use the network. That is fine for previewing *your own* notebook and wrong for anyone else's;
``grader grade`` uses the docker backend unless told otherwise, and says so when it is not.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.runner import inside
from grader.runner.docker_backend import RawRun
from grader.runner.protocol import make_job, parse_frame, submission_status
from grader.specs.model import Assignment

UNSANDBOXED = "UNSANDBOXED local preview: the notebook ran with your permissions"


def run_local(submission: Path, assignment: Assignment, timeout: int | None = None) -> RawRun:
    wall = timeout or assignment.wall_timeout
    with tempfile.TemporaryDirectory(prefix="grader-local-") as work:
        job = make_job(assignment, str(submission.resolve()), work_dir=work)
        started = time.monotonic()
        try:
            done = subprocess.run(
                [sys.executable, inside.__file__],
                input=job.payload.encode(),
                capture_output=True,
                timeout=wall,
                cwd=work,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return RawRun("timeout", None, round(time.monotonic() - started, 2), UNSANDBOXED)
        seconds = round(time.monotonic() - started, 2)
    result = parse_frame(done.stdout[-4 * 1024 * 1024 :], job.key)
    if result is None:
        return RawRun("crashed", None, seconds, f"{UNSANDBOXED}; runner exited {done.returncode}")
    status = submission_status(result)
    return RawRun(status, result, seconds, UNSANDBOXED)
