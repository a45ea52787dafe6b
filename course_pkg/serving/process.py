"""Start and stop ``course-pkg serve`` (and Redis, and the job worker) on 127.0.0.1.

    with ServerProcess(["build/churn"]) as server:
        httpx.post(f"{server.url}/v1/models/churn/predict", json=...)
    server.returncode   # 0: SIGTERM was handled gracefully

The port is chosen free by the OS unless given. ``start`` returns once ``/health/ready``
answers 200, or raises with the process's output if it dies or times out. The process
machinery is ``course_pkg.processes.LocalServer`` (light: no FastAPI, no pandas); this module
adds the commands. ``free_port`` and ``LocalServer`` are importable from here as before.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from course_pkg.processes import LocalServer, free_port, poll_until

__all__ = [
    "LocalServer",
    "RedisServer",
    "ServerProcess",
    "WorkerProcess",
    "free_port",
    "poll_until",
]


class ServerProcess(LocalServer):
    """``course-pkg serve MODEL_DIR...`` with ``workers`` uvicorn workers.

    ``command=`` replaces the command (kept for callers that ran other servers through this
    class; new code subclasses ``LocalServer`` instead).
    """

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
        port = port or free_port()
        serve = [sys.executable, "-m", "course_pkg", "serve", *map(str, model_dirs)]
        serve += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        serve += ["--log-level", "warning"]
        super().__init__(
            list(command) if command else serve,
            port=port,
            env=env,
            ready_path=ready_path,
            ready_any_status=ready_any_status,
            startup_timeout=startup_timeout,
            command_prefix=command_prefix,
        )


class RedisServer(LocalServer):
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
        super().__init__(command, port=port, startup_timeout=startup_timeout)
        self.url = f"redis://127.0.0.1:{port}/0"

    def is_ready(self) -> bool:
        from redis import Redis
        from redis.exceptions import RedisError

        try:
            with Redis(host="127.0.0.1", port=self.port, socket_timeout=1) as client:
                return bool(client.ping())
        except RedisError:
            return False


class WorkerProcess(LocalServer):
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
        super().__init__(command, port=0, env=env, startup_timeout=startup_timeout)
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
