"""Download locked wheels (hash-checked, no dependency resolution) into a wheelhouse.

Images are built offline from a wheelhouse made on the host: the grading image from
requirements.lock (build/wheelhouse), the model-server image from requirements-serve.lock
(build/wheelhouse-serve, taken from build/wheelhouse when it is there).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

PIP_NOISE = "is ignored: it is neither a file nor a directory"


def download_wheels(
    lock: Path, dest: Path, find_links: Sequence[Path] = (), *, offline: bool = False
) -> Path:
    """``pip download --no-deps --require-hashes -r lock -d dest``; ``offline``: only from
    ``find_links`` (no package index). Raises ``RuntimeError`` with pip's message on failure."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "-q",
        "--no-deps",
        "--require-hashes",
        "-r",
        str(lock),
        "-d",
        str(dest),
    ]
    for link in find_links:
        if link.is_dir():
            command += ["--find-links", str(link)]
    if offline:
        command.append("--no-index")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        message = "\n".join(x for x in done.stderr.splitlines() if PIP_NOISE not in x)
        raise RuntimeError(f"pip download into {dest} failed (exit {done.returncode}):\n{message}")
    return dest
