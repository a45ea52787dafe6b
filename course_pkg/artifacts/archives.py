"""Read zip-based model files (torch.save, TorchScript, skops, numpy .npz) the strict way.

Scanners and loaders disagree about zip archives, and published bypasses live in the gap:
torch's reader (miniz) matches member names *case-insensitively* and does not check CRC-32,
so ``archive/DATA.PKL`` is what ``torch.load`` unpickles although a scanner looking for
``data.pkl`` never opens it, and a member with a corrupted checksum loads in torch while
Python's ``zipfile`` refuses to read it (a scanner that errors out reports nothing). Here:

- every member whose name ends in ``.pkl`` in any case is a pickle to scan;
- duplicate names, or names equal except for case, are refused (which one a loader picks
  is the loader's choice, not ours);
- every member is read (and so CRC-checked) up front; a bad checksum is refused as unsafe,
  naming the member and its header offset: what torch would load is not what the archive
  vouches for.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from course_pkg.artifacts.errors import MalformedArtifactError, UnsafeArtifactError


@dataclass(frozen=True)
class Member:
    name: str
    offset: int  # byte offset of the member's local header in the file
    data: bytes  # the content of pickle members; empty for the others (CRC-checked, dropped)


def read_members(data: bytes, source: str) -> list[Member]:
    """Every member of the zip in ``data``, CRC-checked; refuses ambiguous or damaged ones."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise MalformedArtifactError(source, f"damaged zip archive ({error})") from error
    seen: dict[str, str] = {}
    members = []
    with archive:
        for info in archive.infolist():
            folded = info.filename.casefold()
            if folded in seen:
                detail = (
                    f"ambiguous zip member: {seen[folded]!r} and {info.filename!r} have the "
                    "same name up to case; torch matches names case-insensitively, so which "
                    "one it loads is ambiguous"
                )
                raise UnsafeArtifactError(
                    "ambiguous zip member", info.header_offset, source, detail
                )
            seen[folded] = info.filename
            try:
                content = _read_checked(archive, info, keep=is_pickle_member(info.filename))
            except zipfile.BadZipFile as error:
                detail = (
                    f"corrupt zip member {info.filename!r}: it fails its CRC-32 check; torch "
                    "would load it unchecked"
                )
                raise UnsafeArtifactError(
                    "corrupt zip member", info.header_offset, source, detail
                ) from error
            except (OSError, ValueError, EOFError, NotImplementedError) as error:
                raise MalformedArtifactError(
                    source,
                    f"zip member {info.filename!r} cannot be read ({error})",
                    info.header_offset,
                ) from error
            members.append(Member(info.filename, info.header_offset, content))
    return members


def _read_checked(archive: zipfile.ZipFile, info: zipfile.ZipInfo, keep: bool) -> bytes:
    """Read a member to its end (zipfile checks the CRC there); keep the bytes only if asked
    (tensor data can be gigabytes and is loaded by torch itself, never unpickled)."""
    chunks = []
    with archive.open(info) as handle:
        while chunk := handle.read(1 << 20):
            if keep:
                chunks.append(chunk)
    return b"".join(chunks)


def is_pickle_member(name: str) -> bool:
    return name.casefold().endswith(".pkl")


def kind_of(names: list[str]) -> str:
    """skops | torchscript | torch-zip | npz | unknown, from member names (any case)."""
    folded = [n.casefold() for n in names]
    if "schema.json" in folded:
        return "skops"
    if any(n.endswith("/data.pkl") or n == "data.pkl" for n in folded):
        script = any("/code/" in n for n in folded) or any(
            n.endswith("/constants.pkl") for n in folded
        )
        return "torchscript" if script else "torch-zip"
    if folded and all(n.endswith(".npy") for n in folded):
        return "npz"
    return "unknown"


__all__ = ["Member", "is_pickle_member", "kind_of", "read_members"]
