"""Run a local server process and wait for things: light enough for every test and notebook.

    >>> import sys
    >>> port = free_port()
    >>> command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    >>> with LocalServer(command, port=port, ready_path="/") as server:  # started, probed ready
    ...     server.is_ready()
    True
    >>> server.returncode != 0  # stopped with SIGTERM, its temp log closed
    True
    >>> answers = iter([None, None, "ready"])
    >>> poll_until(lambda: next(answers), timeout=5, what="the answer", interval=0.01)
    'ready'

(tests/unit/test_docstring_examples.py runs these lines.)

``LocalServer`` knows processes, not any one server: the command, the port and the readiness
probe are its subclasses' (``course-pkg serve`` is ``course_pkg.serving.process.ServerProcess``;
the model servers, Prometheus, Redis, the demos are the others). ``poll_until`` is the one
wait-until-ready loop of the package. Only the standard library is imported at module level;
httpx is imported by the default HTTP probe when it first runs.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Self, TypeVar

from course_pkg.lifecycle import Managed

if TYPE_CHECKING:
    import subprocess

# socket, subprocess and tempfile are imported where they are used: together they are most of
# this module's import time, and a test that only polls needs none of them.

T = TypeVar("T")


def free_port() -> int:
    """A port the OS says is free now. Another process may take it before the server binds;
    servers that fail to bind exit, and ``LocalServer.start`` reports that with their output."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poll_until(
    check: Callable[[], T],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    failed: Callable[[], str | None] | None = None,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``check`` every ``interval`` s until it returns something truthy; return that.

    ``failed`` is asked first on every round: a reason (a process died) raises RuntimeError
    at once instead of waiting out the timeout. Exceptions in ``retry_on`` count as "not yet"
    (a server still binding its port refuses connections). After ``timeout`` s: TimeoutError
    naming ``what``. It sleeps between rounds whatever the answer, so it never spins.
    """
    deadline = time.monotonic() + timeout
    while True:
        reason = failed() if failed is not None else None
        if reason:
            raise RuntimeError(reason)
        try:
            value = check()
        except retry_on:
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not ready after {timeout:g} s")
        time.sleep(interval)


def http_ready(url: str, *, any_status: bool = False) -> bool:
    """One probe: ``url`` answers 200 (or anything at all with ``any_status``)."""
    import httpx

    try:
        status = httpx.get(url, timeout=1.0).status_code
    except httpx.HTTPError:
        return False
    return status == 200 or any_status


class LocalServer(Managed):
    """A command on 127.0.0.1: started in its own session, output kept in a temp file, probed
    until ready, stopped with SIGTERM (SIGKILL for the group if it does not exit)."""

    what = "server"

    def __init__(
        self,
        command: Sequence[str],
        *,
        port: int,
        env: dict[str, str] | None = None,
        ready_path: str = "/health/ready",
        ready_any_status: bool = False,
        startup_timeout: float = 60.0,
        command_prefix: Sequence[str] = (),
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.command = [*command_prefix, *command]  # prefix e.g. ["taskset", "-c", "1"]
        self.env = {**os.environ, **(env or {})}
        self.ready_path = ready_path
        self.ready_any_status = ready_any_status  # for apps without a health route
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self._log: IO[bytes] | None = None
        self._final_output = ""

    def start(self) -> Self:
        import subprocess
        import tempfile

        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            self.command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        try:
            poll_until(
                self.is_ready,
                timeout=self.startup_timeout,
                what=self.what,
                failed=self._exited,
            )
        except TimeoutError as error:
            self.stop()
            raise TimeoutError(f"{error}:\n{self.output()}") from None
        return self

    def _exited(self) -> str | None:
        assert self.process is not None
        if self.process.poll() is None:
            return None
        return f"{self.what} exited with {self.process.returncode}:\n{self.output()}"

    def is_ready(self) -> bool:
        """One readiness probe: ``ready_path`` answers 200 (any status if ready_any_status)."""
        return http_ready(self.url + self.ready_path, any_status=self.ready_any_status)

    def output(self) -> str:
        """Everything the process printed (stdout and stderr), also after it stopped."""
        if self._log is None or self._log.closed:
            return self._final_output
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait for a graceful exit; SIGKILL the group if it does not come."""
        import subprocess

        if self.process is None:
            return self.returncode or 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.returncode = self.process.returncode
        return self.returncode

    def close(self) -> None:
        """Keep the output readable after the ``with`` block, then close the temp file."""
        if self._log is not None and not self._log.closed:
            self._final_output = self.output()
            self._log.close()

    def __repr__(self) -> str:
        state = "running" if self.process and self.process.poll() is None else "stopped"
        return f"{type(self).__name__}({self.url}, {state})"
