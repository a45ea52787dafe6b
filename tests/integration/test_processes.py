"""course_pkg.processes: the light process helper and the one wait loop, with real processes."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
import time

import pytest

import course_pkg.servers
from course_pkg.processes import LocalServer, free_port, poll_until

HEAVY = ("fastapi", "starlette", "pandas", "numpy", "httpx", "onnxruntime", "cryptography")
# What starting or stopping another model server must not pay for: those, and the model libraries.
MODEL_LIBRARIES = ("sklearn", "torch", "tensorflow", "keras", "mlflow", "pydantic")
SERVERS = sorted(
    f"course_pkg.servers.{info.name}"
    for info in pkgutil.iter_modules(course_pkg.servers.__path__)
    if info.name != "tf_serving_app"  # the app the TF Serving process runs: FastAPI on purpose
)


def modules_loaded_by(statement: str) -> set[str]:
    """Top-level modules a fresh interpreter has loaded after ``statement``."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in json.loads(out.stdout)}


@pytest.mark.parametrize(
    "statement",
    [
        "import course_pkg.processes",
        "import course_pkg.serving.process",  # the old path: serving/__init__ is lazy now
        "from course_pkg.serving.process import ServerProcess, RedisServer, free_port",
    ],
)
def test_the_process_helper_loads_no_heavy_library(statement: str) -> None:
    assert not modules_loaded_by(statement) & set(HEAVY)


@pytest.mark.parametrize("module", SERVERS)
def test_server_helpers_import_heavy_libraries_only_where_they_use_them(module: str) -> None:
    assert len(SERVERS) >= 4  # mlflow_serve, tensorflow, torchserve, azureml_local at least
    loaded = modules_loaded_by(f"import {module}")
    assert not loaded & {*HEAVY, *MODEL_LIBRARIES}, (
        f"{module} loads {loaded & {*HEAVY, *MODEL_LIBRARIES}}"
    )


def test_serving_names_still_import_from_the_package() -> None:
    from course_pkg.serving import ServerSettings, create_app

    assert ServerSettings().host == "127.0.0.1" and callable(create_app)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        import course_pkg.serving

        _ = course_pkg.serving.nope


def test_poll_until_returns_the_first_truthy_answer() -> None:
    answers = iter([None, 0, "", "ready"])
    assert poll_until(lambda: next(answers), timeout=5, what="x", interval=0.01) == "ready"


def test_poll_until_sleeps_between_rounds_and_times_out() -> None:
    calls = []
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"the marker not ready after 0\.3 s"):
        poll_until(lambda: calls.append(1), timeout=0.3, what="the marker", interval=0.1)
    assert 0.3 <= time.monotonic() - started < 2.0
    assert len(calls) <= 5  # ~4 rounds in 0.3 s at 0.1 s: it never spins


def test_poll_until_stops_at_once_when_failed_names_a_reason() -> None:
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="the process died"):
        poll_until(lambda: False, timeout=30, what="x", failed=lambda: "the process died")
    assert time.monotonic() - started < 1.0


def test_poll_until_retries_the_listed_exceptions_only() -> None:
    answers = iter([ConnectionError("not yet"), ConnectionError("not yet"), True])

    def probe() -> bool:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert poll_until(probe, timeout=5, what="x", interval=0.01, retry_on=(ConnectionError,))
    with pytest.raises(KeyError):
        poll_until(lambda: {}["k"], timeout=5, what="x", retry_on=(ConnectionError,))


def test_a_server_that_exits_during_start_is_reported_and_cleaned_up() -> None:
    server = LocalServer(
        [sys.executable, "-c", "import sys; print('boom: no model'); sys.exit(3)"],
        port=free_port(),
    )
    with pytest.raises(RuntimeError, match="exited with 3") as raised, server:
        pytest.fail("the with block must not run")
    assert "boom: no model" in str(raised.value)
    assert server._log is not None and server._log.closed  # the temp log did not leak
    assert server.returncode == 3
    assert "boom: no model" in server.output()  # still readable after cleanup


def test_a_server_that_never_gets_ready_is_stopped_with_its_output() -> None:
    server = LocalServer(
        [sys.executable, "-c", "import time; print('starting', flush=True); time.sleep(60)"],
        port=free_port(),  # nothing listens there: never ready
        startup_timeout=1.0,
    )
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="server not ready after 1 s") as raised, server:
        pytest.fail("the with block must not run")
    assert time.monotonic() - started < 20
    assert "starting" in str(raised.value)
    assert server.process is not None and server.process.poll() is not None  # stopped
    assert server._log is not None and server._log.closed


def test_a_ready_server_serves_and_stops_gracefully() -> None:
    port = free_port()
    server = LocalServer(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        port=port,
        ready_path="/",
        startup_timeout=20,
    )
    with server:
        assert server.is_ready()
    assert server.returncode is not None and server._log is not None and server._log.closed
