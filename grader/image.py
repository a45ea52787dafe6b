"""Build the grading image from a minimal, explicit context (never the repository itself).

The context holds exactly: the wheelhouse (built from requirements.lock on the host, so the
image build needs no network), the lock, course_pkg + datasets + the lock under course/ (what
student notebooks import), and the in-container runner. Hidden specs never enter it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from course_pkg import paths

WHEELHOUSE = paths.BUILD / "wheelhouse"


def build_wheelhouse() -> Path:
    """pip download every locked wheel (hash-checked) into build/wheelhouse; idempotent."""
    from course_pkg.wheels import download_wheels

    try:
        return download_wheels(paths.LOCK_FILE, WHEELHOUSE, [Path("/opt/wheels")])
    except RuntimeError as error:
        raise SystemExit(str(error)) from None


def build_image(tag: str, base_image: str) -> int:
    build_wheelhouse()
    with tempfile.TemporaryDirectory(prefix="grader-image-") as tmp:
        context = Path(tmp)
        # hard links keep the 1 GB wheelhouse from being copied (same filesystem), else copy
        try:
            shutil.copytree(WHEELHOUSE, context / "wheelhouse", copy_function=_link_or_copy)
        except OSError:
            shutil.copytree(WHEELHOUSE, context / "wheelhouse", dirs_exist_ok=True)
        shutil.copy(paths.LOCK_FILE, context / "requirements.lock")
        course = context / "course"
        shutil.copytree(
            paths.ROOT / "course_pkg",
            course / "course_pkg",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        shutil.copytree(paths.DATASETS, course / "datasets")
        shutil.copy(paths.LOCK_FILE, course / "requirements.lock")
        shutil.copy(paths.ROOT / "grader" / "runner" / "inside.py", context / "runner.py")
        shutil.copy(paths.ROOT / "grader" / "Dockerfile", context / "Dockerfile")
        return subprocess.run(
            [
                "docker",
                "build",
                "-q",
                "--build-arg",
                f"BASE_IMAGE={base_image}",
                "-t",
                tag,
                str(context),
            ],
            check=False,
        ).returncode


def _link_or_copy(src: str, dst: str) -> None:
    try:
        Path(dst).hardlink_to(src)
    except OSError:
        shutil.copy2(src, dst)
