"""SHA-256 checksums for the shipped data (``datasets/SHA256SUMS``, ``sha256sum`` format)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from course_pkg import paths

_BLOCK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (memory flat in file size)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def shipped_files(directory: Path = paths.DATASETS) -> list[Path]:
    """The data files the checksum list covers: everything but docs, code and the list itself."""
    skip_names = {"SHA256SUMS", "README.md"}
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file() and p.name not in skip_names and p.suffix not in {".py", ".partial"}
    )


def write_sums(directory: Path = paths.DATASETS) -> Path:
    lines = [
        f"{sha256_file(p)}  {p.relative_to(directory).as_posix()}" for p in shipped_files(directory)
    ]
    target = directory / "SHA256SUMS"
    target.write_text("\n".join(lines) + "\n")
    return target


def read_sums(sums_file: Path) -> dict[str, str]:
    entries: dict[str, str] = {}
    for number, line in enumerate(sums_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            raise ValueError(f"{sums_file}:{number}: expected '<sha256>  <path>', got {line!r}")
        entries[name] = digest
    return entries


def verify_sums(directory: Path = paths.DATASETS) -> list[str]:
    """Every problem found, as a readable line; an empty list means all files match.

    Checks both ways: a listed file that is missing or changed, and a data file that is
    present but not listed (someone added data without recording its checksum).
    """
    sums_file = directory / "SHA256SUMS"
    if not sums_file.exists():
        return [f"{sums_file} is missing: run `course-pkg data build` to recreate it"]
    expected = read_sums(sums_file)
    problems: list[str] = []
    for name, digest in expected.items():
        file = directory / name
        if not file.exists():
            problems.append(f"{name}: listed in SHA256SUMS but missing")
        elif (actual := sha256_file(file)) != digest:
            problems.append(f"{name}: sha256 {actual[:12]}… differs from SHA256SUMS {digest[:12]}…")
    for file in shipped_files(directory):
        name = file.relative_to(directory).as_posix()
        if name not in expected:
            problems.append(f"{name}: present but not listed in SHA256SUMS")
    return problems
