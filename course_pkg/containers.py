"""Build, run, tag, push and pull the model-server image with the Docker SDK (notebook 06).

    context = prepare_context()                        # build/wheelhouse-serve + build/model
    built = build_image("model-server:dev")            # the top-level Dockerfile
    with ServerContainer(built.image_id, port=8000) as server:   # --network host, 127.0.0.1
        httpx.get(server.url + "/v1/models")
    with LocalRegistry() as registry:                  # Debian's docker-registry on 127.0.0.1
        digest = push(built.image_id, f"{registry.address}/model-server", "0.1.0")

Everything binds to 127.0.0.1 and containers use ``--network host`` (the engine here runs
without a bridge; see FIELD-NOTES), so a server inside listens on the host's loopback only.
Builds run with ``network_mode="none"``: the Dockerfile installs from the local wheelhouse.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from course_pkg import paths
from course_pkg.lifecycle import Managed
from course_pkg.processes import LocalServer, http_ready, poll_until

SERVE_LOCK = paths.ROOT / "requirements-serve.lock"
SERVE_WHEELHOUSE = paths.BUILD / "wheelhouse-serve"
MODEL_CONTEXT = paths.BUILD / "model"
LOCAL_BASE = "course-base:bookworm-py311-slim"
LOCAL_BUILD_BASE = "course-base:bookworm-py311"


def client() -> Any:
    import docker

    return docker.from_env(timeout=300)


# --------------------------------------------------------------------------- build context
def build_serve_wheelhouse() -> Path:
    """The runtime wheels, hash-checked, in build/wheelhouse-serve: from build/wheelhouse
    (no download) when the course wheelhouse has them all, else from the package index."""
    from course_pkg.wheels import download_wheels

    course_wheels = paths.BUILD / "wheelhouse"
    if course_wheels.is_dir():
        try:
            return download_wheels(SERVE_LOCK, SERVE_WHEELHOUSE, [course_wheels], offline=True)
        except RuntimeError:
            pass  # a wheel is missing there: fetch from the index below
    return download_wheels(SERVE_LOCK, SERVE_WHEELHOUSE)


def prepare_context(model_package: Path | None = None) -> Path:
    """Fill build/ with what the Dockerfile copies: the wheelhouse and the model to bake.

    ``model_package`` (a package directory) is copied to build/model; by default the churn
    model is trained and packaged there (ONNX + skops, parity-checked) unless present.
    """
    from course_pkg.artifacts.manifest import verify_package

    build_serve_wheelhouse()
    if model_package is not None:
        verify_package(model_package)
        if MODEL_CONTEXT.exists():
            shutil.rmtree(MODEL_CONTEXT)
        shutil.copytree(model_package, MODEL_CONTEXT)
    elif not (MODEL_CONTEXT / "manifest.json").exists():
        from course_pkg.training import package_churn

        package_churn(MODEL_CONTEXT, overwrite=True)
    verify_package(MODEL_CONTEXT)
    return paths.ROOT


def git_revision() -> str:
    done = subprocess.run(
        ["git", "-C", str(paths.ROOT), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def build_args(model_dir: Path = MODEL_CONTEXT) -> dict[str, str]:
    """The Dockerfile's ARGs: versions for the OCI labels, the baked model's identity."""
    from course_pkg.artifacts.manifest import read_manifest
    from course_pkg.version import __version__

    manifest = read_manifest(model_dir)
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    created = (
        dt.datetime.fromtimestamp(int(epoch), dt.UTC) if epoch else dt.datetime.now(dt.UTC)
    ).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "VERSION": __version__,
        "REVISION": git_revision(),
        "CREATED": created,
        "MODEL_NAME": manifest["name"],
        "MODEL_VERSION": manifest["version"],
        "MODEL_SHA256": manifest["files"][manifest["model_file"]]["sha256"],
    }


@dataclass
class BuiltImage:
    image_id: str
    tag: str
    seconds: float
    size_bytes: int
    labels: dict[str, str] = field(default_factory=dict)


def build_image(
    tag: str = "model-server:dev",
    *,
    base_image: str = LOCAL_BASE,
    build_base_image: str = LOCAL_BUILD_BASE,
    dockerfile: str = "Dockerfile",
    context: Path = paths.ROOT,
    extra_args: dict[str, str] | None = None,
) -> BuiltImage:
    """``docker build`` (legacy builder, no network) and return id, size and labels."""
    import docker.errors

    args = {**build_args(), "BASE_IMAGE": base_image, "BUILD_IMAGE": build_base_image}
    args.update(extra_args or {})
    started = time.perf_counter()
    try:
        image, _ = client().images.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=tag,
            buildargs=args,
            rm=True,
            forcerm=True,
            network_mode="none",
            pull=False,
        )
    except docker.errors.BuildError as error:
        log = "".join(str(chunk.get("stream", "")) for chunk in error.build_log)
        raise RuntimeError(f"docker build failed: {error.msg}\n{log[-3000:]}") from None
    return BuiltImage(
        image_id=image.id,
        tag=tag,
        seconds=time.perf_counter() - started,
        size_bytes=int(image.attrs["Size"]),
        labels=dict(image.labels),
    )


def layer_sizes(image: str) -> list[tuple[str, int]]:
    """(instruction, bytes) per layer, oldest first, as ``docker history`` shows them."""
    import re

    rows = []
    for layer in reversed(client().images.get(image).history()):
        command = " ".join(str(layer.get("CreatedBy", "")).split())
        command = command.replace("/bin/sh -c #(nop) ", "").replace("/bin/sh -c ", "RUN ")
        command = re.sub(r"^\|\d+ (\S+=\S* )*", "", command)  # build-arg prefix of RUN lines
        command = re.sub(r"COPY (dir|file):[0-9a-f]+ in (\S+)", r"COPY … → \2", command)
        rows.append((command[:90] or "(base image)", int(layer.get("Size", 0))))
    return rows


# --------------------------------------------------------------------------- tags, registry
def tags_for(version: str, revision: str, model_version: str) -> list[str]:
    """semver, short git sha, and the model's version: what changed is in the tag."""
    return [version, revision[:12], f"model-{model_version}"]


def tag_image(image: str, repository: str, tags: list[str]) -> list[str]:
    target = client().images.get(image)
    for tag in tags:
        target.tag(repository, tag)
    return [f"{repository}:{tag}" for tag in tags]


def push(repository: str, tag: str) -> str:
    """Push ``repository:tag``; returns the manifest digest (``sha256:…``) the registry gave."""
    digest = None
    for line in client().images.push(repository, tag, stream=True, decode=True):
        if "error" in line:
            raise RuntimeError(f"push {repository}:{tag} failed: {line['error']}")
        digest = (line.get("aux") or {}).get("Digest", digest)
    if digest is None:
        raise RuntimeError(f"push {repository}:{tag} reported no digest")
    return str(digest)


def pull_by_digest(repository: str, digest: str) -> Any:
    """``docker pull repository@sha256:…`` — the exact bytes that were pushed."""
    return client().images.pull(f"{repository}@{digest}")


class LocalRegistry(LocalServer):
    """Debian's ``docker-registry`` (distribution 2.8) on 127.0.0.1, storage in a temp dir."""

    what = "docker-registry"

    def __init__(
        self, port: int = 5000, binary: str = "docker-registry", startup_timeout: float = 20.0
    ) -> None:
        self.address = f"127.0.0.1:{port}"
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="course-registry-"))
        config = self.root / "config.yml"
        super().__init__(
            [binary, "serve", str(config)],
            port=port,
            ready_path="/v2/",
            startup_timeout=startup_timeout,
        )

    def start(self) -> Self:
        if shutil.which(self.binary) is None:
            raise FileNotFoundError(
                f"{self.binary} not found: `apt-get install docker-registry` (Debian package)"
            )
        (self.root / "config.yml").write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.root / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.address}\n"
        )
        return super().start()

    def catalog(self) -> dict[str, Any]:
        import httpx

        answer: dict[str, Any] = httpx.get(f"http://{self.address}/v2/_catalog").json()
        return answer

    def stop(self, timeout: float = 10.0) -> int:
        """Stop the registry and delete its storage (pushed images live only as long as it)."""
        code = super().stop(timeout)
        self.close()
        shutil.rmtree(self.root, ignore_errors=True)
        return code


# --------------------------------------------------------------------------- running
class ServerContainer(Managed):
    """Run the image as a server on 127.0.0.1:``port`` (``--network host``) until stopped."""

    def __init__(
        self,
        image: str,
        *,
        port: int,
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
        volumes: dict[str, dict[str, str]] | None = None,
        name: str | None = None,
    ) -> None:
        self.image = image
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = {"COURSE_SERVE_HOST": "127.0.0.1", "COURSE_SERVE_PORT": str(port), **(env or {})}
        self.command = command
        self.volumes = volumes
        self.name = name
        self.container: Any = None
        self.exit_code: int | None = None
        self.logs = ""

    def start(self, timeout: float = 30.0) -> ServerContainer:
        self.container = client().containers.run(
            self.image,
            self.command,
            detach=True,
            network_mode="host",
            environment=self.env,
            volumes=self.volumes,
            name=self.name,
        )
        self.started = time.perf_counter()
        try:
            self.ready_after = wait_ready(self.url, timeout, self.container)
        except BaseException:
            self.stop()  # never leave a half-started container behind
            raise
        return self

    def health(self) -> str:
        self.container.reload()
        return str(self.container.attrs["State"].get("Health", {}).get("Status", "none"))

    def stop(self, timeout: int = 20) -> int:
        if self.container is None:
            return self.exit_code or 0
        self.container.stop(timeout=timeout)  # SIGTERM, then SIGKILL after `timeout`
        self.exit_code = int(self.container.wait(timeout=timeout + 10)["StatusCode"])
        self.logs = self.container.logs().decode(errors="replace")
        self.container.remove(force=True)
        self.container = None
        return self.exit_code


def wait_ready(url: str, timeout: float, container: Any = None) -> float:
    """Seconds until ``url``/health/ready answers 200 (raises with the logs on failure)."""
    started = time.perf_counter()

    def exited() -> str | None:
        if container is None:
            return None
        container.reload()
        if container.status not in ("exited", "dead"):
            return None
        return f"container exited:\n{container.logs().decode(errors='replace')[-2000:]}"

    poll_until(
        lambda: http_ready(url + "/health/ready"),
        timeout=timeout,
        what=url,
        interval=0.02,  # the image benchmark measures time to ready with it
        failed=exited,
    )
    return time.perf_counter() - started


def image_config(image: str) -> dict[str, Any]:
    config: dict[str, Any] = client().images.get(image).attrs["Config"]
    return config


def log_lines(logs: str) -> list[dict[str, Any]]:
    """Parse a container's stdout: every line must be a JSON object (raises otherwise)."""
    return [json.loads(line) for line in logs.splitlines() if line.strip()]
