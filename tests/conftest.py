"""Shared fixtures. Docker tests fail in CI when the engine is absent and skip elsewhere."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from course_pkg.serving.process import RedisServer

IN_CI = os.environ.get("CI") == "true"
BASE_IMAGE = os.environ.get("BASE_IMAGE", "course-base:bookworm-py311")


def _docker_unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true but {reason}: .ci/run must start the engine and build the image")
    pytest.skip(f"{reason} (start it with `sudo scripts/docker-up`; CI runs these tests)")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    try:
        import docker

        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as error:
        _docker_unavailable(f"no Docker engine answers ({type(error).__name__})")
    yield client
    client.close()


def require_image(client: Any, image: str, how: str) -> str:
    """``image`` if the engine has it; else fail in CI, skip elsewhere, saying how to build it."""
    import docker.errors

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        _docker_unavailable(f"image {image} is missing ({how})")
    return image


@pytest.fixture(scope="session")
def base_image(docker_client: Any) -> str:
    return require_image(docker_client, BASE_IMAGE, "scripts/build-base-image")


@pytest.fixture(scope="session")
def slim_base_image(docker_client: Any) -> str:
    image = os.environ.get("SLIM_BASE_IMAGE", "course-base:bookworm-py311-slim")
    return require_image(docker_client, image, "scripts/build-base-image")


@pytest.fixture(scope="session")
def server_dev_image(docker_client: Any) -> str:
    return require_image(docker_client, "model-server:dev", "make image")


@pytest.fixture(scope="session")
def grading_image(docker_client: Any) -> str:
    from grader.runner.docker_backend import DEFAULT_IMAGE

    return require_image(docker_client, DEFAULT_IMAGE, "make grader-image")


@pytest.fixture(scope="session")
def model_packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Real packages, built once: churn 1.0.0 and 1.1.0 (ONNX + skops) and digits 1.0.0."""
    from course_pkg.training import package_churn, package_digits

    root = tmp_path_factory.mktemp("packages")
    return {
        "churn": package_churn(root / "churn-1.0.0").path,
        "churn_v2": package_churn(root / "churn-1.1.0", version="1.1.0", seed=7).path,
        "digits": package_digits(root / "digits-1.0.0").path,
    }


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A real headless Chromium (Debian's chromium + chromedriver), one per session."""
    from course_pkg.browser import INSTALL, chromium, find_chromium

    if find_chromium() is None:
        if IN_CI:
            pytest.fail(f"CI=true but no chromium/chromedriver: .ci/run must {INSTALL}")
        pytest.skip(f"no chromium/chromedriver here ({INSTALL}); CI runs these tests")
    with chromium() as driver:
        yield driver


def redis_server() -> RedisServer:
    """A throwaway redis-server on 127.0.0.1 (not started); skips, or fails in CI, without it."""
    from course_pkg.serving.process import RedisServer

    if shutil.which("redis-server") is None:
        reason = "redis-server is not installed (apt-get install redis-server)"
        if IN_CI:
            pytest.fail(f"CI=true but {reason}: .ci/run installs it")
        pytest.skip(f"{reason}; CI runs these tests")
    return RedisServer()


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    """One redis-server per test module (the job queue, shared server state)."""
    with redis_server() as running:
        yield running
    assert running.returncode == 0, running.output()


# Fixtures that start a container, a browser or a server: a test using one is an integration
# test whatever folder it sits in, so `make test-fast` (-m "not integration") leaves it out.
_PROCESS_FIXTURES = {
    "docker_client": "docker",
    "base_image": "docker",
    "slim_base_image": "docker",
    "server_dev_image": "docker",
    "grading_image": "docker",
    "browser": "integration",
    "redis": "integration",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration/ `integration`, and every test that uses a
    process-starting fixture with that fixture's marker (and `integration`)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)
        for fixture, marker in _PROCESS_FIXTURES.items():
            if fixture in fixtures:
                item.add_marker(getattr(pytest.mark, marker))
                item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def collect_gradio_leak(request: pytest.FixtureRequest) -> Iterator[None]:
    """Collect the garbage gradio leaves (its event loop, unclosed after ``demo.close()``)
    while the test that made it still runs, so its unraisable ResourceWarning is reported,
    and filtered, there and not in whichever test the collector happens to run next."""
    yield
    if request.node.get_closest_marker("gradio_leak") is not None:
        import gc

        gc.collect()


@pytest.fixture(scope="session")
def by_hand_artefacts(docker_client: Any, server_dev_image: str) -> Iterator[dict[str, str]]:
    """What notebook 06's by-hand exercise makes, made with the docker CLI as a student would:
    the server image under another name, a container on 127.0.0.1 only, a push to a real
    registry on 127.0.0.1. Removed afterwards (only these names; model-server:dev is untouched).
    """
    import subprocess

    from course_pkg import containers
    from course_pkg.serving.process import free_port

    registry = containers.LocalRegistry(port=free_port()).start()
    # names of this process's own: `make unit` runs two pytest workers, each with this fixture
    tag = f"nb06-by-hand-test-{os.getpid()}"
    port, image, name = free_port(), f"{tag}:test", tag
    pushed = f"{registry.address}/nb06-by-hand:0.1.0"

    def docker(*args: str) -> None:
        subprocess.run(["docker", *args], check=True, capture_output=True, timeout=120)

    try:
        docker("tag", server_dev_image, image)
        loopback = ["-e", "COURSE_SERVE_HOST=127.0.0.1", "-e", f"COURSE_SERVE_PORT={port}"]
        docker("run", "-d", "--name", name, "--network", "host", *loopback, image)
        docker("tag", image, pushed)
        docker("push", "-q", pushed)
        yield {"image": image, "container": name, "pushed": pushed}
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
        subprocess.run(["docker", "rmi", image, pushed], capture_output=True, timeout=60)
        registry.stop()
