"""Real containers on the real engine, with the locked-down flags the grader relies on."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from course_pkg import paths

pytestmark = [pytest.mark.docker, pytest.mark.integration]

PROBE = """
import json, os
try:
    open('/probe', 'w')
    root_writable = True
except OSError:
    root_writable = False
with open('/work/ok', 'w') as f:
    f.write('x')
# No route means no packet can leave: we prove isolation without sending any traffic.
with open('/proc/net/route') as f:
    routes = f.read().splitlines()[1:]
print(json.dumps({
    'uid': os.getuid(),
    'interfaces': sorted(os.listdir('/sys/class/net')),
    'root_writable': root_writable,
    'routes': routes,
}))
"""


def test_locked_down_container_has_no_network_and_a_read_only_root(
    docker_client: Any, base_image: str
) -> None:
    output = docker_client.containers.run(
        base_image,
        ["python3", "-c", PROBE],
        network_mode="none",
        user="65534:65534",
        read_only=True,
        tmpfs={"/work": "size=16m,uid=65534"},
        mem_limit="256m",
        pids_limit=64,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        remove=True,
    )
    facts = json.loads(output)
    assert facts["uid"] == 65534
    assert facts["interfaces"] == ["lo"]
    assert facts["root_writable"] is False
    assert facts["routes"] == []


def test_memory_limit_kills_a_memory_bomb(docker_client: Any, base_image: str) -> None:
    container = docker_client.containers.run(
        base_image,
        ["python3", "-c", "x = bytearray(512 * 1024 * 1024); print('survived')"],
        network_mode="none",
        mem_limit="64m",
        memswap_limit="64m",
        detach=True,
    )
    try:
        status = container.wait(timeout=60)
        assert status["StatusCode"] == 137  # SIGKILL from the OOM killer
        container.reload()
        assert container.attrs["State"]["OOMKilled"] is True
        assert b"survived" not in container.logs()
    finally:
        container.remove(force=True)


def test_plain_docker_build_from_the_repo_root_works_offline(
    docker_client: Any, base_image: str, slim_base_image: str
) -> None:
    """`docker build .` as the README shows it (after `make image-context`), with no network."""
    from course_pkg import containers

    containers.prepare_context()
    tag = "course-test/model-server:plain-build"
    build = subprocess.run(
        [
            "docker",
            "build",
            "-q",
            "--network",
            "none",
            "--build-arg",
            f"BASE_IMAGE={slim_base_image}",
            "--build-arg",
            f"BUILD_IMAGE={base_image}",
            "-t",
            tag,
            ".",
        ],
        cwd=paths.ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr
    try:
        out = docker_client.containers.run(
            tag,
            entrypoint=["python", "-m", "course_pkg", "--version"],
            network_mode="none",
            remove=True,
        )
        assert out.decode().startswith("course-pkg ")
        assert docker_client.images.get(tag).attrs["Config"]["User"] == "10001"
    finally:
        docker_client.images.remove(tag, force=True)
