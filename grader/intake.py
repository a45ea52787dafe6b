"""The one place a folder entry becomes a submission: a safe id, the original name kept as
data, a private copy made without following symlinks, and a status for every entry.

Why one place: the name is the student's (it may start with ``=``, hold a colon, a newline,
bytes that are not UTF-8, or be ``gradebook.csv``), and the entry may be a directory, a
symlink to ``/etc/passwd`` or to another student's notebook. Everything after intake works
on the id (``[A-Za-z0-9_.-]``, never starting with ``.`` or ``-``) and on the private copy,
which is what the container mounts; the original name only ever travels as escaped text.

Every entry gets a :class:`Submission`: ``status`` is ``None`` when it is to be graded, else
one of ``not-a-file``, ``symlink-refused``, ``too-large``, ``reserved-name``. Two entries
that map to the same id are both graded, each under ``<id>-<hash>`` with a note naming the
other and ``duplicate`` set, so neither overwrites the other, a regrade finds the same ids
again, and the gradebook's status says ``duplicate-id`` where the grading itself was ``ok``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

MAX_SUBMISSION_BYTES = 20 * 1024 * 1024
MAX_ID_CHARS = 80
# Ids that would collide with what the grader itself writes into the results folder.
RESERVED_IDS = frozenset(
    {
        "gradebook.csv",
        "gradebook",
        "results.json",
        "feedback.md",
        "similarity.csv",
        "similarity.html",
        "grading-run.json",
    }
)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class Submission:
    """One folder entry: ``name`` is the original (decoded, escapes for bad bytes)."""

    id: str
    name: str
    raw: bytes  # the entry's name as the file system has it
    status: str | None = None  # None: graded; else why it was not
    detail: str = ""
    note: str = ""
    copy: Path | None = None  # the private copy the container mounts
    size: int = 0
    duplicate: bool = False  # another entry of the folder maps to the same id


def display_name(raw: bytes) -> str:
    """The name as text: UTF-8 decoded (bad bytes as ``\\xNN``), NFC-normalised."""
    return unicodedata.normalize("NFC", raw.decode("utf-8", "backslashreplace"))


def base_id(name: str) -> str:
    """``alice.ipynb`` → ``alice``; other names keep their suffix; unsafe runs become ``_``."""
    stem = name[: -len(".ipynb")] if name.endswith(".ipynb") and name != ".ipynb" else name
    folded = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    safe = _UNSAFE.sub("_", folded).lstrip(".-") or "_"
    return safe[:MAX_ID_CHARS]


def _short_hash(raw: bytes, length: int = 8) -> str:
    return hashlib.sha256(raw).hexdigest()[:length]


def scan(folder: Path) -> list[Submission]:
    """Every entry of ``folder``, sorted by name, each with an id unique within the folder."""
    raws = sorted(os.listdir(os.fsencode(folder)))
    entries = []
    for raw in raws:
        name = display_name(raw)
        ident = base_id(name)
        entries.append(Submission(ident, name, raw))
    by_id: dict[str, list[Submission]] = {}
    for entry in entries:
        by_id.setdefault(entry.id.lower(), []).append(entry)  # case-insensitive file systems
    for group in by_id.values():
        if len(group) > 1:
            for entry in group:
                others = ", ".join(o.name for o in group if o is not entry)
                entry.id = f"{entry.id[: MAX_ID_CHARS - 9]}-{_short_hash(entry.raw)}"
                entry.duplicate = True
                entry.note = f"duplicate id: also submitted as {others}; graded as {entry.id}"
    for entry in entries:
        if entry.id.lower() in RESERVED_IDS:
            entry.status = "reserved-name"
            entry.detail = (
                f"the name {entry.name!r} is reserved for the grader's own output; "
                "rename the file (e.g. to your student id) and resubmit"
            )
            entry.id = f"reserved_{entry.id}"
    taken: set[str] = set()
    for entry in entries:  # a derived id may still meet a real one: lengthen its hash
        if entry.id.lower() in taken:
            entry.id = f"{base_id(entry.name)[: MAX_ID_CHARS - 33]}-{_short_hash(entry.raw, 32)}"
            entry.note = (entry.note + "; " if entry.note else "") + f"graded as {entry.id}"
        taken.add(entry.id.lower())
    return entries


def take_copy(folder: Path, entry: Submission, private: Path) -> Submission:
    """Copy the entry into ``private`` without following a symlink; set ``status`` if refused.

    The entry is opened relative to the folder with ``O_NOFOLLOW`` (a symlink fails with
    ELOOP) and ``O_NONBLOCK`` (a FIFO does not hang), then checked with ``fstat`` on the open
    descriptor, so a file swapped for a link between the check and the read is refused too.
    """
    if entry.status is not None:
        return entry
    folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            info = os.lstat(entry.raw, dir_fd=folder_fd)
        except FileNotFoundError:
            return _refuse(entry, "not-a-file", "the entry disappeared while grading started")
        if stat.S_ISLNK(info.st_mode):
            return _refuse(
                entry,
                "symlink-refused",
                "a symbolic link, not a file: the grader never follows links; "
                "submit the notebook file itself",
            )
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            return _refuse(entry, "not-a-file", f"{kind}: submit one .ipynb file")
        try:
            fd = os.open(entry.raw, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder_fd)
        except OSError as error:
            if error.errno == errno.ELOOP:
                return _refuse(entry, "symlink-refused", "a symbolic link, not a file")
            return _refuse(entry, "not-a-file", f"could not be opened ({error.strerror})")
    finally:
        os.close(folder_fd)
    with os.fdopen(fd, "rb") as handle:
        opened = os.fstat(handle.fileno())
        if not stat.S_ISREG(opened.st_mode):
            return _refuse(entry, "not-a-file", "not a regular file: submit one .ipynb file")
        entry.size = opened.st_size
        data = handle.read(MAX_SUBMISSION_BYTES + 1)
    if len(data) > MAX_SUBMISSION_BYTES:
        return _refuse(
            entry,
            "too-large",
            f"the file is larger than the {MAX_SUBMISSION_BYTES // 2**20} MiB limit "
            "(clear large outputs: Kernel → Restart & Clear All Outputs, then save)",
        )
    private.mkdir(parents=True, exist_ok=True)
    copy = private / f"{entry.id}.ipynb"
    copy.write_bytes(data)
    copy.chmod(0o644)  # the container's uid reads it through a read-only bind mount
    entry.copy = copy
    return entry


def _refuse(entry: Submission, status: str, detail: str) -> Submission:
    entry.status, entry.detail = status, detail
    return entry
