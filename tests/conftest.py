"""Shared fixtures. Docker tests fail in CI when the engine is absent and skip elsewhere."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

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
