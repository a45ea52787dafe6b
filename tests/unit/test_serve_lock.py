"""requirements-serve.lock (the server image) must pin exactly what the course lock pins."""

from __future__ import annotations

import re

from course_pkg import paths
from course_pkg.preflight import parse_lock


def test_serve_lock_is_a_subset_of_the_course_lock() -> None:
    course = parse_lock(paths.LOCK_FILE.read_text())
    serve = parse_lock((paths.ROOT / "requirements-serve.lock").read_text())
    assert serve, "requirements-serve.lock has no pins"
    differ = {name: (v, course.get(name)) for name, v in serve.items() if course.get(name) != v}
    assert not differ, f"pins differ from requirements.lock (run `make lock`): {differ}"


def test_serve_lock_is_hashed_and_lists_every_direct_requirement() -> None:
    text = (paths.ROOT / "requirements-serve.lock").read_text()
    pins = parse_lock(text)
    assert text.count("--hash=sha256:") >= len(pins)  # pip --require-hashes in the Dockerfile
    wanted = [
        re.split(r"[\s\[#]", line.strip())[0].lower()
        for line in (paths.ROOT / "requirements-serve.in").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert all(name.replace("_", "-") in pins for name in wanted), wanted
