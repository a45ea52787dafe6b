"""Self-checks for notebook 06 (Docker packaging), and the static rules the grader reuses.

The self-checks *build and run* what the student wrote (they run on the student's machine,
with its Docker engine). The grader only reads the text: building untrusted Dockerfiles on the
instructor's engine would run students' RUN lines there, outside the sandbox.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from course_pkg.checks._registry import CheckFailed, expect, register

# The broken Dockerfile exercise 2 starts from.
BROKEN_DOCKERFILE = """\
FROM python:3.11-slim
WORKDIR /app
COPY . /app
RUN pip install -r requirements.txt
EXPOSE 8000
CMD uvicorn app:app --host 0.0.0.0 --port 8000
"""


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per line, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\s*\n", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        found.append((keyword.upper(), rest.strip()))
    return found


def _exec_form(argument: str) -> list[str] | None:
    try:
        value = json.loads(argument)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def dockerfile_findings(text: str) -> dict[str, bool]:
    """The properties exercise 2 asks for (shared by the self-check and the grader)."""
    steps = instructions(text)
    kinds = [k for k, _ in steps]
    users = [a for k, a in steps if k == "USER"]
    last_user = users[-1] if users else "root"
    copies = [i for i, (k, a) in enumerate(steps) if k == "COPY" and "requirements" not in a]
    installs = [i for i, (k, a) in enumerate(steps) if k == "RUN" and "pip install" in a]
    dep_copy = [i for i, (k, a) in enumerate(steps) if k == "COPY" and "requirements" in a]
    starts = [a for k, a in steps if k in ("CMD", "ENTRYPOINT")]
    return {
        "non_root_user": bool(users) and last_user.split(":")[0] not in ("root", "0"),
        "healthcheck": "HEALTHCHECK" in kinds
        and not any(a.upper().startswith("NONE") for k, a in steps if k == "HEALTHCHECK"),
        "dependencies_before_source": bool(installs and dep_copy and copies)
        and max(dep_copy) < min(installs) < min(copies),
        "exec_form_start": bool(starts) and all(_exec_form(a) for a in starts),
        "no_pip_cache": all(
            "--no-cache-dir" in a for k, a in steps if k == "RUN" and "pip install" in a
        ),
    }


HINTS = {
    "non_root_user": "add a USER that is not root (create it first with useradd)",
    "healthcheck": "add a HEALTHCHECK that asks the server's readiness endpoint",
    "dependencies_before_source": "COPY requirements.txt, RUN pip install, *then* COPY the code: "
    "a code change must not invalidate the dependency layer",
    "exec_form_start": 'start with exec form (CMD ["uvicorn", ...]): shell form makes /bin/sh '
    "PID 1, and `docker stop`'s SIGTERM never reaches the server",
    "no_pip_cache": "pip install --no-cache-dir: the download cache is dead weight in a layer",
}


def _text(answer: Any) -> Any:
    return answer() if callable(answer) else answer


@register("06.fix_dockerfile")
def _fix_dockerfile(answer: Any) -> str:
    answer = _text(answer)
    expect(isinstance(answer, str), "return the fixed Dockerfile as a string")
    findings = dockerfile_findings(answer)
    for key, ok in findings.items():
        expect(ok, HINTS[key])
    return "non-root, healthy, cache-friendly, and it stops cleanly"


def digits_dockerfile_findings(text: str) -> dict[str, bool]:
    """Static view of exercise 1 (what the grader scores)."""
    steps = instructions(text)
    froms = [a for k, a in steps if k == "FROM"]
    copies = [a for k, a in steps if k == "COPY"]
    cmds = [_exec_form(a) for k, a in steps if k == "CMD"]
    users = [a for k, a in steps if k == "USER"]
    return {
        "builds_on_the_server_image": bool(froms)
        and froms[-1].split()[0].startswith("model-server"),
        "copies_the_model": any("/models/digits" in a for a in copies),
        "serves_it": bool(cmds) and cmds[-1] == ["/models/digits"],
        "stays_non_root": not users or users[-1].split(":")[0] not in ("root", "0"),
    }


def build_and_probe(
    dockerfile: str, context: Path, image: str = "nb06-digits:check"
) -> dict[str, Any]:
    """Build ``dockerfile`` in ``context`` (no network), run it on 127.0.0.1, ask /v1/models."""
    import httpx

    from course_pkg import containers
    from course_pkg.serving.process import free_port

    (context / "Dockerfile").write_text(dockerfile)
    docker = containers.client()
    built, _ = docker.images.build(path=str(context), tag=image, rm=True, network_mode="none")
    port = free_port()
    with containers.ServerContainer(built.id, port=port) as server:
        models = httpx.get(f"{server.url}/v1/models").json()["models"]
        uid = server.container.exec_run(["id", "-u"]).output.decode().strip()
    docker.images.remove(built.id, force=True)
    return {"models": [m["name"] for m in models], "uid": uid, "exit_code": server.exit_code}


@register("06.write_dockerfile")
def _write_dockerfile(answer: Any) -> str:
    import shutil

    from course_pkg.training import package_digits

    answer = _text(answer)
    expect(isinstance(answer, str), "return the Dockerfile as a string")
    static = digits_dockerfile_findings(answer)
    expect(static["builds_on_the_server_image"], "start FROM model-server:dev (the image above)")
    expect(static["copies_the_model"], "COPY the digits package into /models/digits")
    expect(static["serves_it"], 'CMD ["/models/digits"] (the server image\'s ENTRYPOINT serves it)')
    context = Path(tempfile.mkdtemp(prefix="nb06-check-"))
    try:
        package_digits(context / "digits")
        try:
            result = build_and_probe(answer, context)
        except Exception as error:  # build or run failed: say so, with the engine's words
            raise CheckFailed(f"building or running it failed: {str(error)[-300:]}") from None
    finally:
        shutil.rmtree(context, ignore_errors=True)
    expect(result["models"] == ["digits"], f"the container serves {result['models']}, not digits")
    expect(result["uid"] not in ("0", ""), "the container runs as root")
    expect(result["exit_code"] == 0, f"docker stop gave exit code {result['exit_code']}, not 0")
    return "built, served digits as non-root, stopped cleanly"


SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
TAG_CASES = [
    # (version, revision, model_version, release)
    ("1.4.2", "8dcefa79725349f005282a53a88384211c277d29", "2.0.1", True),
    ("1.5.0", "0123456789abcdef0123456789abcdef01234567", "2.1.0", False),
]


def tag_findings(
    tags: Any, version: str, revision: str, model: str, release: bool
) -> dict[str, bool]:
    tags = list(tags) if isinstance(tags, (list, tuple)) else []
    return {
        "git_sha": revision[:12] in tags,
        "model_version": f"model-{model}" in tags,
        "semver_only_on_release": (version in tags) == release,
        "latest_only_on_release": ("latest" in tags) == release,
        "valid_tags": all(
            isinstance(t, str) and re.fullmatch(r"[\w][\w.-]{0,127}", t) for t in tags
        ),
    }


@register("06.choose_tags", forbidden=("course_pkg.containers.tags_for",))
def _choose_tags(answer: Any) -> str:
    expect(callable(answer), "pass the function itself: check(..., choose_tags)")
    for version, revision, model, release in TAG_CASES:
        tags = answer(version, revision, model, release)
        for key, ok in tag_findings(tags, version, revision, model, release).items():
            kind = "a release" if release else "a build that is not a release"
            expect(ok, f"for {kind} ({version}): {key.replace('_', ' ')} — got {tags}")
    return "immutable tags always, moving ones only for releases"


def _registry_digest(reference: str) -> str | None:
    """The digest a registry on 127.0.0.1 holds for ``HOST:PORT/REPO:TAG`` (None if absent)."""
    import httpx

    name, _, tag = reference.rpartition(":")
    host, _, repository = name.partition("/")
    accept = "application/vnd.docker.distribution.manifest.v2+json"
    answer = httpx.head(
        f"http://{host}/v2/{repository}/manifests/{tag}", headers={"Accept": accept}, timeout=5
    )
    return answer.headers.get("docker-content-digest") if answer.status_code == 200 else None


def _ready(url: str, wait_s: float = 20.0) -> int | str:
    """The readiness status, polled while a just-started container loads its model."""
    import time

    import httpx

    deadline = time.monotonic() + wait_s
    while True:
        try:
            status: int | str = httpx.get(url, timeout=2).status_code
        except httpx.HTTPError as error:
            status = f"no answer ({type(error).__name__})"
        if status == 200 or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def by_hand_findings(image: str, container: str, pushed: str) -> list[str]:
    """What is wrong with the image, container and pushed tag the student made (empty: all good).

    Reads the engine (docker SDK) and the registry's v2 API; starts and changes nothing.
    """
    import docker.errors
    import httpx

    from course_pkg import containers

    engine = containers.client()
    try:
        built = engine.images.get(image)
    except docker.errors.ImageNotFound:
        return [f"no image {image!r}: `docker build -t {image} …` first"]
    config = built.attrs["Config"]
    problems = []
    if (built.labels or {}).get("io.course.model.name") != "churn":
        problems.append(f"{image} is not the course's server image (no io.course.model labels)")
    if config.get("User") in (None, "", "0", "root"):
        problems.append(f"{image} runs as root: build the course's Dockerfile (USER 10001)")
    try:
        running = engine.containers.get(container)
    except docker.errors.NotFound:
        return [
            *problems,
            f"no container named {container!r}: `docker run -d --name {container} …`",
        ]
    if running.status != "running":
        problems.append(f"container {container} is {running.status}, not running")
    if running.image.id != built.id:
        problems.append(f"container {container} runs another image, not {image}")
    host = running.attrs["HostConfig"]
    env = dict(v.split("=", 1) for v in running.attrs["Config"].get("Env") or [] if "=" in v)
    bindings = [b for spec in (host.get("PortBindings") or {}).values() for b in spec or []]
    if host.get("NetworkMode") == "host":
        ok = env.get("COURSE_SERVE_HOST") == "127.0.0.1"
        port = env.get("COURSE_SERVE_PORT", "8000")
    else:
        ok = bool(bindings) and all(b.get("HostIp") == "127.0.0.1" for b in bindings)
        port = bindings[0].get("HostPort", "") if bindings else ""
    if not ok:
        problems.append(
            "the server must be reachable on 127.0.0.1 only: `-p 127.0.0.1:PORT:8000`, or on "
            "this engine `--network host -e COURSE_SERVE_HOST=127.0.0.1 -e COURSE_SERVE_PORT=PORT`"
        )
    elif running.status == "running":
        ready = _ready(f"http://127.0.0.1:{port}/health/ready")
        if ready != 200:
            problems.append(f"127.0.0.1:{port}/health/ready answered {ready}, not 200")
    if not re.fullmatch(r"127\.0\.0\.1:\d+/[a-z0-9][a-z0-9._/-]*:[\w][\w.-]*", pushed):
        return [*problems, f"{pushed!r} is not 127.0.0.1:PORT/NAME:TAG (the course's registry)"]
    try:
        digest = _registry_digest(pushed)
    except httpx.HTTPError as error:
        return [*problems, f"the registry in {pushed} does not answer ({type(error).__name__})"]
    if digest is None:
        problems.append(
            f"the registry has no {pushed}: `docker tag` it, then `docker push {pushed}`"
        )
    elif not any(d.endswith(digest) for d in built.attrs.get("RepoDigests") or []):
        problems.append(f"{pushed} in the registry is not the image {image} you built")
    return problems


@register("06.by_hand")
def _by_hand(answer: Any) -> str:
    expect(
        isinstance(answer, dict) and {"image", "container", "pushed"} <= set(answer),
        'pass {"image": IMAGE, "container": NAME, "pushed": "127.0.0.1:PORT/NAME:TAG"}',
    )
    problems = by_hand_findings(
        str(answer["image"]), str(answer["container"]), str(answer["pushed"])
    )
    expect(not problems, "; ".join(problems))
    return "non-root image with its labels, ready on 127.0.0.1 only, same digest in the registry"
