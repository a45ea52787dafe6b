"""Folder entries → submissions, and the rendering boundary for student-controlled text.

The hostile names are made here, in tmp_path, with bytes paths: a name that is not valid
UTF-8 cannot be committed portably, and none of these belong in the repository.
"""

from __future__ import annotations

import csv
import io
import os
import threading
import time
from pathlib import Path

from grader.intake import MAX_SUBMISSION_BYTES, Submission, scan, take_copy
from grader.render import csv_cell, markdown_text, terminal_text


def _touch(folder: Path, raw: bytes, data: bytes = b"{}") -> None:
    with open(os.path.join(os.fsencode(folder), raw), "wb") as handle:
        handle.write(data)


def _taken(folder: Path, private: Path) -> dict[bytes, object]:
    return {e.raw: take_copy(folder, e, private) for e in scan(folder)}


def test_every_entry_gets_a_safe_unique_id_and_keeps_its_name(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    names = [
        b"=HYPERLINK(1).ipynb",
        b"a:b.ipynb",
        b"bad\xff.ipynb",
        b"new\nline.ipynb",
        b"\x1b[31mred.ipynb",
        b".hidden.ipynb",
        b"-rf.ipynb",
        b"Alice.ipynb",
        b"alice.ipynb",
        b"gradebook.csv",
        "Jose\u0301.ipynb".encode(),  # decomposed é: normalised to NFC, id folded to ASCII
    ]
    for raw in names:
        _touch(folder, raw)
    entries = scan(folder)
    assert sorted(e.raw for e in entries) == sorted(names)  # nothing skipped
    ids = [e.id for e in entries]
    assert len({i.lower() for i in ids}) == len(ids)  # unique, even case-insensitively
    for ident in ids:
        assert ident[0].isalnum() or ident[0] == "_", ident
        assert all(c.isascii() and (c.isalnum() or c in "_.-") for c in ident), ident
    by_raw = {e.raw: e for e in entries}
    assert by_raw[b"bad\xff.ipynb"].name == "bad\\xff.ipynb"
    assert by_raw[b"new\nline.ipynb"].name == "new\nline.ipynb"  # kept as data, escaped later
    jose = by_raw["Jose\u0301.ipynb".encode()]
    assert (jose.name, jose.id) == ("Jos\u00e9.ipynb", "Jose")
    alice, other = by_raw[b"Alice.ipynb"], by_raw[b"alice.ipynb"]
    assert alice.id != other.id and "also submitted as alice.ipynb" in alice.note
    assert alice.duplicate and other.duplicate  # the gradebook's status says duplicate-id
    assert not any(e.duplicate for e in entries if e not in (alice, other))
    reserved = by_raw[b"gradebook.csv"]
    assert reserved.status == "reserved-name" and reserved.id != "gradebook.csv"
    assert scan(folder)[0].id == entries[0].id  # a regrade finds the same ids


def test_symlinks_directories_and_big_files_are_refused_not_followed(tmp_path: Path) -> None:
    folder, private = tmp_path / "in", tmp_path / "private"
    folder.mkdir()
    _touch(folder, b"bob.ipynb", b'{"bob": 1}')
    os.symlink("/etc/passwd", folder / "passwd.ipynb")
    os.symlink(folder / "bob.ipynb", folder / "copycat.ipynb")
    os.symlink("/nonexistent", folder / "dangling.ipynb")
    (folder / "dir.ipynb").mkdir()
    os.mkfifo(folder / "fifo.ipynb")
    with open(folder / "huge.ipynb", "wb") as handle:
        handle.truncate(MAX_SUBMISSION_BYTES + 1)
    taken = {e.name: e for e in (take_copy(folder, e, private) for e in scan(folder))}
    for name in ("passwd.ipynb", "copycat.ipynb", "dangling.ipynb"):
        assert taken[name].status == "symlink-refused" and taken[name].copy is None
    assert taken["dir.ipynb"].status == "not-a-file"
    assert taken["fifo.ipynb"].status == "not-a-file"  # opened non-blocking: no hang
    assert taken["huge.ipynb"].status == "too-large" and "20 MiB" in taken["huge.ipynb"].detail
    bob = taken["bob.ipynb"]
    assert bob.status is None and bob.copy is not None
    assert bob.copy.parent == private and bob.copy.read_bytes() == b'{"bob": 1}'
    assert sorted(p.name for p in private.iterdir()) == ["bob.ipynb"]  # only real files copied


def test_csv_cells_cannot_become_formulas() -> None:
    for hostile in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        cell = csv_cell(hostile)
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    row = io.StringIO()
    csv.writer(row).writerow([csv_cell('a,"b"\nc')])
    assert list(csv.reader(io.StringIO(row.getvalue()))) == [['a,"b"\\x0ac']]
    assert csv_cell("alice") == "alice" and len(csv_cell("x" * 10_000)) <= 300


def test_markdown_text_cannot_add_rows_headings_html_or_score_lines() -> None:
    fake_row = "x |\n| ✅ q2: Bonus | 100 / 100 | correct |\n# Score: 100 / 100"
    rendered = markdown_text(fake_row)
    assert "\n" not in rendered and "|" not in rendered.replace("\\|", "")
    assert "\\# Score" in rendered
    html = markdown_text("<script>alert(1)</script><img src=x onerror=alert(1)></details>")
    assert "<" not in html and ">" not in html and "&lt;script&gt;" in html
    assert "\x1b" not in markdown_text("\x1b[2J")
    assert markdown_text("**bold**") == "\\*\\*bold\\*\\*"
    assert len(markdown_text("y" * 10_000, 100)) <= 100


def test_terminal_text_strips_control_characters() -> None:
    shown = terminal_text("ok\x1b[2J\r\u202eevil\x07")
    assert all(c.isprintable() for c in shown)
    assert shown == "ok\\x1b[2J\\x0d\\u202eevil\\x07"


def test_a_file_swapped_for_a_link_mid_copy_is_never_followed(tmp_path: Path) -> None:
    """A real race: a thread keeps replacing the entry (atomic rename) by a regular file or by
    a symlink to a secret while intake copies it thousands of times. Whatever the
    interleaving (the swap may land between the lstat and the open), each copy is the real
    file or a refusal: never the secret."""
    folder, private = tmp_path / "in", tmp_path / "private"
    folder.mkdir()
    secret = tmp_path / "secret"
    secret.write_bytes(b"SECRET")
    real, link = tmp_path / "real", tmp_path / "link"
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            real.write_bytes(b"REAL")
            os.replace(real, folder / "swap.ipynb")
            os.symlink(secret, link)
            os.replace(link, folder / "swap.ipynb")

    _touch(folder, b"swap.ipynb", b"REAL")
    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    outcomes: dict[str, int] = {}
    deadline = time.monotonic() + 3
    try:
        while time.monotonic() < deadline:
            entry = take_copy(folder, Submission("swap", "swap.ipynb", b"swap.ipynb"), private)
            if entry.copy is not None:
                assert entry.copy.read_bytes() == b"REAL"
                entry.copy.unlink()
            outcomes[entry.status or "copied"] = outcomes.get(entry.status or "copied", 0) + 1
    finally:
        stop.set()
        swapper.join()
    assert set(outcomes) <= {"copied", "symlink-refused"}, outcomes
    assert outcomes.get("copied") and outcomes.get("symlink-refused"), outcomes  # both raced
