"""Hostile files: each really runs code when loaded naively; safe_load refuses every one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from course_pkg.artifacts import UnsafeArtifactError, safe_load, scan_file
from course_pkg.artifacts.hostile import CORPUS, NAIVE_LOADERS, Hostile, build
from course_pkg.artifacts.safe_load import _RestrictedUnpickler, sniff

IDS = [h.name for h in CORPUS]


def test_corpus_is_large_and_varied() -> None:
    assert len(CORPUS) >= 30
    assert {h.naive for h in CORPUS} == set(NAIVE_LOADERS)


@pytest.mark.slow
@pytest.mark.parametrize("entry", CORPUS, ids=IDS)
def test_naive_loading_runs_the_payload(entry: Hostile, tmp_path: Path) -> None:
    """Proof the file is hostile: the naive loader, in a subprocess, creates the marker."""
    path, marker = build(entry, tmp_path)
    subprocess.run(
        [sys.executable, "-c", NAIVE_LOADERS[entry.naive], str(path)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert marker.exists(), f"{entry.name} did not execute when loaded naively"


@pytest.mark.parametrize("entry", CORPUS, ids=IDS)
def test_safe_load_refuses_and_names_the_global(entry: Hostile, tmp_path: Path) -> None:
    path, marker = build(entry, tmp_path)
    with pytest.raises(UnsafeArtifactError) as info:
        safe_load(path)
    assert info.value.global_name == entry.expected_global
    assert entry.expected_global in str(info.value)
    assert "Nothing was deserialised" in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    "entry", [h for h in CORPUS if h.naive.startswith("pickle")], ids=lambda h: h.name
)
def test_offset_points_at_the_opcode_that_imports(entry: Hostile, tmp_path: Path) -> None:
    path, _ = build(entry, tmp_path)
    data = path.read_bytes()
    with pytest.raises(UnsafeArtifactError) as info:
        safe_load(path)
    offset = info.value.offset
    assert offset is not None
    # GLOBAL 'c', INST 'i' or STACK_GLOBAL 0x93: the opcodes that import a name
    assert data[offset : offset + 1] in {b"c", b"i", b"\x93"}


def test_restricted_unpickler_is_a_second_line_of_defence(tmp_path: Path) -> None:
    """Even if the scan were skipped, the loader itself refuses the global."""
    import io

    entry = next(h for h in CORPUS if h.name == "reduce-exec-p5")
    path, marker = build(entry, tmp_path)
    from course_pkg.artifacts import DEFAULT_ALLOWLIST

    with pytest.raises(UnsafeArtifactError, match=r"builtins\.exec"):
        _RestrictedUnpickler(io.BytesIO(path.read_bytes()), DEFAULT_ALLOWLIST, str(path)).load()
    assert not marker.exists()


def test_content_is_sniffed_not_the_extension(tmp_path: Path) -> None:
    entry = next(h for h in CORPUS if h.name == "misleading-extension")
    path, _ = build(entry, tmp_path)
    assert path.suffix == ".onnx"
    assert sniff(path.read_bytes()).kind == "pickle"


@pytest.mark.slow  # the CLI end to end, several processes
def test_scan_cli_flags_every_hostile_file(tmp_path: Path) -> None:
    paths = [build(entry, tmp_path)[0] for entry in CORPUS]
    result = subprocess.run(
        [sys.executable, "-m", "course_pkg", "scan", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == len(CORPUS)
    assert all(line.startswith("UNSAFE") for line in lines), result.stdout
    assert not list(tmp_path.glob("*.MARKER"))


def test_scan_file_verdict_names_global(tmp_path: Path) -> None:
    path, _ = build(CORPUS[0], tmp_path)
    verdict = scan_file(path)
    assert not verdict.safe and "posix.system" in verdict.reason


def test_crosscheck_table_runs_every_scanner(tmp_path: Path) -> None:
    from course_pkg.artifacts.crosscheck import SCANNERS, crosscheck

    rows = crosscheck([build(entry, tmp_path)[0] for entry in CORPUS])
    assert [r["file"] for r in rows] == [entry.file for entry in CORPUS]
    assert all(r["course_pkg"] == "flagged" for r in rows)
    for name in SCANNERS:
        assert all(
            r[name] in {"flagged", "missed"} or r[name].startswith(("error", "n/a")) for r in rows
        )
    assert not list(tmp_path.glob("*.MARKER"))


def test_ambiguous_zip_member_names_are_refused(tmp_path: Path) -> None:
    """Two members equal up to case: which one torch reads is its choice, so refuse."""
    import io
    import zipfile

    import torch

    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buffer)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, zipfile.ZipFile(out, "w") as z:
        for info in source.infolist():
            z.writestr(info.filename, source.read(info))
        z.writestr("archive/DATA.PKL", b"\x80\x04N.")
    path = tmp_path / "twins.pt"
    path.write_bytes(out.getvalue())
    with pytest.raises(UnsafeArtifactError, match="same name up to case") as info:
        safe_load(path)
    assert info.value.global_name == "ambiguous zip member" and info.value.offset is not None


def test_protocol_0_pickle_starting_with_any_valid_opcode_is_scanned_as_a_pickle() -> None:
    """pickletools rejects INT 0x1; pickle accepts it, so the sniffer must too."""
    for data in (b"I0x1\n.", b"L0x1L\n.", b"(l.", b"N.", b"I01\n."):
        assert sniff(data).kind == "pickle", data
    assert sniff(b"customer_id,tenure\nC1,3\n").kind == "unknown"
