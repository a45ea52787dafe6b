"""The setup check behind notebook 00 and ``course-pkg doctor``.

Each row answers one question a student would otherwise discover the hard way halfway through a
later notebook, and says how to fix it. Rows marked ``required=False`` (Docker, free ports) only
matter for later notebooks, so they do not fail the overall verdict.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import platform
import re
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from course_pkg import paths

PASS, FAIL = "PASS", "FAIL"
COURSE_PORTS = (8000, 5000)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


@dataclass(frozen=True)
class Row:
    check: str
    status: str
    detail: str
    remedy: str = ""
    required: bool = True


@dataclass(frozen=True)
class Report:
    rows: tuple[Row, ...]

    @property
    def ok(self) -> bool:
        return all(r.status == PASS for r in self.rows if r.required)

    def failures(self, required_only: bool = True) -> list[Row]:
        return [r for r in self.rows if r.status != PASS and (r.required or not required_only)]

    def as_text(self) -> str:
        width = max(len(r.check) for r in self.rows)
        lines = [f"{'check':<{width}}  status  detail"]
        for r in self.rows:
            lines.append(f"{r.check:<{width}}  {r.status:<6}  {r.detail}")
            if r.status != PASS:
                lines.append(f"{'':<{width}}  {'':<6}  → {r.remedy}")
        verdict = "PASS: ready for the course" if self.ok else "FAIL: fix the required rows above"
        return "\n".join([*lines, "", verdict])

    def to_frame(self):  # type: ignore[no-untyped-def]  # pandas is optional here
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "check": r.check,
                    "status": r.status,
                    "detail": r.detail,
                    "remedy": r.remedy if r.status != PASS else "",
                    "required": "yes" if r.required else "later notebooks",
                }
                for r in self.rows
            ]
        )


def normalize_name(name: str) -> str:
    """PEP 503 name normalisation: ``Foo_Bar.baz`` → ``foo-bar-baz``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> dict[str, str]:
    """``name==version`` pins of a requirements/lock file → {normalised name: version}.

    Skips comments, options (``--hash``, ``--find-links``), continuation lines and markers;
    keeps local version labels (``torch==2.13.0+cpu``).
    """
    pins: dict[str, str] = {}
    for line in text.splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[normalize_name(match.group(1))] = match.group(2)
    return pins


def version_mismatches(
    locked: dict[str, str], installed: dict[str, str]
) -> list[tuple[str, str, str | None]]:
    """(name, locked version, installed version or None), sorted by name, for every pin that
    is not installed at exactly the locked version."""
    return sorted(
        (name, version, installed.get(name))
        for name, version in locked.items()
        if installed.get(name) != version
    )


def installed_versions() -> dict[str, str]:
    return {normalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port`` (we try to bind it, then let go)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# --- the rows ------------------------------------------------------------------------------


def _python() -> Row:
    version = platform.python_version()
    ok = sys.version_info[:2] == (3, 11)
    return Row(
        "Python version",
        PASS if ok else FAIL,
        f"{version} ({sys.executable})",
        "install Python 3.11 and re-run `make setup` (the lock is for CPython 3.11)",
    )


def _packages() -> Row:
    if not paths.LOCK_FILE.exists():
        return Row("packages vs lock", FAIL, f"{paths.LOCK_FILE} not found", "run from a checkout")
    locked = parse_lock(paths.LOCK_FILE.read_text())
    wrong = version_mismatches(locked, installed_versions())
    detail = f"{len(locked) - len(wrong)}/{len(locked)} pinned packages at the locked version"
    if wrong:
        shown = ", ".join(f"{n} {have or 'missing'} (lock {want})" for n, want, have in wrong[:4])
        detail += f"; e.g. {shown}" + (" …" if len(wrong) > 4 else "")
    return Row("packages vs lock", PASS if not wrong else FAIL, detail, "run `make setup`")


def _kernel() -> Row:
    prefix = Path(sys.prefix).resolve()
    expected = paths.VENV.resolve()
    ok = prefix == expected
    return Row(
        "kernel is the project venv",
        PASS if ok else FAIL,
        f"sys.prefix = {prefix}",
        f"start JupyterLab with `make lab` and pick the kernel 'Python (course-mlops)' "
        f"(expected {expected})",
    )


def _datasets() -> Row:
    from course_pkg.datasets import verify_sums

    problems = verify_sums()
    detail = "all shipped files match SHA256SUMS" if not problems else "; ".join(problems[:3])
    return Row(
        "datasets and checksums",
        PASS if not problems else FAIL,
        detail,
        "restore with `git checkout -- datasets/` (or rebuild: `course-pkg data build`)",
    )


def _docker_socket_problem() -> str | None:
    """Why the engine's Unix socket refuses a connection, or None. Probed by hand because
    docker-py leaks the socket of a failed connect (a ResourceWarning in every caller)."""
    import socket

    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return None
    path = host.removeprefix("unix://")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(path)
        except OSError as error:
            return f"{path}: {error.strerror or type(error).__name__}"
    return None


def _docker() -> Row:
    try:
        problem = _docker_socket_problem()
        if problem:
            raise ConnectionError(problem)
        import docker

        client = docker.from_env(timeout=5)
        version = client.version().get("Version", "?")
        client.close()
    except Exception as error:
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        return Row(
            "Docker engine",
            FAIL,
            f"not reachable: {reason}",
            "Linux: `sudo scripts/docker-up` (installs docker.io and starts dockerd); "
            "macOS/Windows: start Docker Desktop. Needed from notebook 06 on.",
            required=False,
        )
    return Row("Docker engine", PASS, f"engine {version} answers", required=False)


def _redis() -> Row:
    import shutil

    binary = shutil.which("redis-server")
    return Row(
        "redis-server (job queue)",
        PASS if binary else FAIL,
        binary or "not installed",
        "`sudo apt-get install redis-server` (notebook 05's job queue starts its own on 127.0.0.1)",
        required=False,
    )


def _ports() -> Row:
    busy = [p for p in COURSE_PORTS if not port_is_free(p)]
    detail = ", ".join(f"{p} {'busy' if p in busy else 'free'}" for p in COURSE_PORTS)
    return Row(
        "ports 8000/5000 free",
        PASS if not busy else FAIL,
        detail,
        "stop what listens there (`ss -ltnp | grep -E ':(8000|5000)'`) or pass another --port "
        "to the servers in notebooks 04-08",
        required=False,
    )


def _architecture() -> Row:
    machine = platform.machine().lower()
    ok = machine in {"x86_64", "amd64"}
    return Row(
        "CPU architecture",
        PASS if ok else FAIL,
        f"{machine}, {os.cpu_count()} cores, {platform.system()}",
        "the lock pins x86-64 Linux wheels (torch 2.13.0+cpu); on ARM or macOS use "
        "environment.yml with conda instead",
    )


ROWS: tuple[Callable[[], Row], ...] = (
    _python,
    _packages,
    _kernel,
    _datasets,
    _docker,
    _redis,
    _ports,
    _architecture,
)


def run_preflight() -> Report:
    """Run every row; a row that crashes reports FAIL with the error instead of raising."""
    rows = []
    for fn in ROWS:
        try:
            rows.append(fn())
        except Exception as error:  # a broken environment must still produce a table
            name = fn.__name__.strip("_")
            rows.append(Row(name, FAIL, f"check crashed: {error!r}", "report this to staff"))
    return Report(tuple(rows))
