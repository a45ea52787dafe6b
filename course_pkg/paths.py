"""Where things live. The only module that knows the repository layout.

Everything else asks this module for a path instead of building relative paths, so the code
works the same from a notebook in notebooks/, from a test, from the CLI and in a container.
Set ``COURSE_ROOT`` to point an installed (non-editable) copy of course_pkg at a checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT: Path = Path(os.environ.get("COURSE_ROOT", Path(__file__).resolve().parents[1])).resolve()
DATASETS: Path = ROOT / "datasets"
CHURN_CSV: Path = DATASETS / "churn.csv"
DIGITS_DIR: Path = DATASETS / "digits"
SHA256SUMS: Path = DATASETS / "SHA256SUMS"
SOLUTIONS: Path = ROOT / "solutions"
NOTEBOOKS: Path = ROOT / "notebooks"
LOCK_FILE: Path = ROOT / "requirements.lock"
VENV: Path = ROOT / ".venv"
# Generated artifacts (models, big generated files, benchmark output) go here; git ignores it.
BUILD: Path = ROOT / "build"

__all__ = [
    "BUILD",
    "CHURN_CSV",
    "DATASETS",
    "DIGITS_DIR",
    "LOCK_FILE",
    "NOTEBOOKS",
    "ROOT",
    "SHA256SUMS",
    "SOLUTIONS",
    "VENV",
]
