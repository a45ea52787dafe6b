"""Start and stop a real server process on 127.0.0.1 (notebooks, tests, benchmarks).

    with ServerProcess(["build/churn"]) as server:
        httpx.post(f"{server.url}/v1/models/churn/predict", json=...)
    server.returncode   # 0: SIGTERM was handled gracefully

The port is chosen free by the OS unless given. ``start`` returns once ``is_ready()`` holds —
``/health/ready`` answers 200 by default — or raises with the process's output if it dies or
times out. Subclasses change the command and the readiness probe: ``RedisServer`` and
``WorkerProcess`` here (the job queue), and the other model servers and Prometheus in
``course_pkg.servers`` and ``course_pkg.monitoring``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from course_pkg.lifecycle import Managed


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess(Managed):
    def __init__(
        self,
        model_dirs: Sequence[str | Path],
        *,
        port: int | None = None,
        workers: int = 1,
        env: dict[str, str] | None = None,
        command: Sequence[str] | None = None,
        ready_path: str = "/health/ready",
        ready_any_status: bool = False,
        startup_timeout: float = 60.0,
        command_prefix: Sequence[str] = (),
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = (
            list(command)
            if command
            else [
                sys.executable,
                "-m",
                "course_pkg",
                "serve",
                *map(str, model_dirs),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
            ]
        )
        self.command[0:0] = list(command_prefix)  # e.g. ["taskset", "-c", "1"] for benchmarks
        self.env = {**os.environ, **(env or {})}
        self.ready_path = ready_path
        self.ready_any_status = ready_any_status  # for apps without a health route
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self._log: IO[bytes] | None = None
        self._final_output = ""

    def start(self) -> ServerProcess:
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        self.process = subprocess.Popen(
            self.command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.what} exited with {self.process.returncode}:\n{self.output()}"
                )
            if self.is_ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(
            f"{self.what} not ready after {self.startup_timeout} s:\n{self.output()}"
        )

    what = "server"

    def is_ready(self) -> bool:
        """One readiness probe: ``ready_path`` answers 200 (any status if ready_any_status)."""
        import httpx

        try:
            status = httpx.get(self.url + self.ready_path, timeout=1.0).status_code
        except httpx.HTTPError:
            return False
        return status == 200 or self.ready_any_status

    def output(self) -> str:
        """Everything the server printed (stdout and stderr), also after it stopped."""
        if self._log is None or self._log.closed:
            return self._final_output
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait for a graceful exit; SIGKILL the group if it does not come."""
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
        """Keep the server's output readable after the ``with`` block, then close the file."""
        if self._log is not None and not self._log.closed:
            self._final_output = self.output()
            self._log.close()

    def __repr__(self) -> str:
        state = "running" if self.process and self.process.poll() is None else "stopped"
        return f"ServerProcess({self.url}, {state})"


class RedisServer(ServerProcess):
    """A throwaway Redis (Debian's ``redis-server``) on 127.0.0.1: no persistence, no disk.

    with RedisServer() as redis:
        redis.url   # redis://127.0.0.1:PORT/0
    """

    what = "redis-server"

    def __init__(self, *, port: int | None = None, startup_timeout: float = 20.0) -> None:
        import shutil

        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError(
                "redis-server is not installed: sudo apt-get install redis-server"
            )
        port = port or free_port()
        command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--protected-mode", "yes"]
        command += ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
        super().__init__([], port=port, command=command, startup_timeout=startup_timeout)
        self.url = f"redis://127.0.0.1:{port}/0"

    def is_ready(self) -> bool:
        from redis import Redis
        from redis.exceptions import RedisError

        try:
            with Redis(host="127.0.0.1", port=self.port, socket_timeout=1) as client:
                return bool(client.ping())
        except RedisError:
            return False


class WorkerProcess(ServerProcess):
    """``course-pkg worker`` for the job queue; ready once it has loaded the models and
    registered with Redis. SIGTERM is a warm shutdown: the running job finishes first."""

    what = "worker"

    def __init__(
        self,
        model_dirs: Sequence[str | Path],
        redis_url: str,
        *,
        env: dict[str, str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        command = [sys.executable, "-m", "course_pkg", "worker", *map(str, model_dirs)]
        command += ["--redis-url", redis_url]
        super().__init__([], port=0, command=command, env=env, startup_timeout=startup_timeout)
        self.url = redis_url

    def is_ready(self) -> bool:
        from redis import Redis
        from redis.exceptions import RedisError
        from rq import Worker

        assert self.process is not None
        try:
            with Redis.from_url(self.url, socket_timeout=1) as client:
                return any(w.pid == self.process.pid for w in Worker.all(connection=client))
        except RedisError:
            return False
