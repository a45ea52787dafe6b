"""Load pickle-family and skops files only after proving they cannot run code.

``safe_load(path)``:
1. reads the file once into memory (so what is scanned is exactly what is loaded — no
   time-of-check/time-of-use gap), refusing files over ``max_bytes``;
2. sniffs the *content*, never the extension: zip (torch archive, TorchScript, skops),
   joblib-compressed (zlib/gzip/bz2/lzma/xz), or a raw pickle (protocol 0-5);
3. scans every pickle stream inside (``pickle_scan``) against the allowlist;
4. only then deserialises, with a restricted unpickler whose ``find_class`` enforces the same
   allowlist (second line of defence), ``torch.load(weights_only=True)``, ``torch.jit.load``
   or ``skops.io.load`` with exactly the types our allowlist accepts.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from course_pkg.artifacts.allowlist import DEFAULT, Allowlist, normalize
from course_pkg.artifacts.errors import UnsafeArtifactError, UnsupportedFormatError
from course_pkg.artifacts.pickle_scan import ScanReport, scan_stream

MAX_BYTES = 2 << 30  # 2 GiB: a model bigger than this is not a course artifact
# First bytes a protocol 0/1 pickle can start with (text opcodes): MARK, containers, scalars,
# GLOBAL, INST, PERSID, and protocol 2+'s PROTO.
_PICKLE_START = frozenset(b"(]})cipIJKLMNFGSTUVXd\x80")
_ZIP = b"PK\x03\x04"
_DOTTED = re.compile(r"[A-Za-z_][\w.]*")


@dataclass(frozen=True)
class Sniffed:
    kind: str  # pickle | joblib-<compressor> | torch-zip | torchscript | skops | unknown
    detail: str = ""


def sniff(data: bytes) -> Sniffed:
    """What the bytes are, from their content (magic numbers and zip members)."""
    if data.startswith(_ZIP):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile:
            return Sniffed("unknown", "damaged zip archive")
        if "schema.json" in names:
            return Sniffed("skops")
        if any(n.endswith("/data.pkl") for n in names):
            is_script = any("/code/" in n for n in names) or any(
                n.endswith("/constants.pkl") for n in names
            )
            return Sniffed("torchscript" if is_script else "torch-zip")
        return Sniffed("unknown", "a zip archive that is neither a torch nor a skops file")
    from joblib.numpy_pickle_utils import _COMPRESSORS  # joblib's own magic-number table

    for name, compressor in _COMPRESSORS.items():
        if compressor.prefix and data.startswith(compressor.prefix):
            return Sniffed(f"joblib-{name}")
    if data[:1] and data[0] in _PICKLE_START:
        if data[0] == 0x80 and (len(data) < 2 or data[1] > pickle.HIGHEST_PROTOCOL):
            return Sniffed("unknown", "pickle PROTO opcode with an unknown protocol")
        if not _first_opcode_parses(data):
            return Sniffed("unknown", f"unrecognised first bytes {data[:8]!r}")
        return Sniffed("pickle")
    return Sniffed("unknown", f"unrecognised first bytes {data[:8]!r}")


def _first_opcode_parses(data: bytes) -> bool:
    """Text such as CSV can start with a byte that is also a protocol-0 opcode ('c', 'i',
    'I', '('…); a real pickle's first opcode parses, and GLOBAL/INST name identifiers."""
    try:
        opcode, arg, _ = next(pickletools.genops(io.BytesIO(data)))
    except Exception:
        return False
    if opcode.name in {"GLOBAL", "INST"}:
        return all(_DOTTED.fullmatch(part) for part in str(arg).split(" "))
    return True


def _decompressed(data: bytes, kind: str) -> IO[bytes]:
    """joblib's own decompressor for ``kind`` over ``data``, as a buffered stream."""
    from joblib.numpy_pickle_utils import _COMPRESSORS, _buffered_read_file

    wrapper = _COMPRESSORS[kind.removeprefix("joblib-")]
    return _buffered_read_file(wrapper.decompressor_file(io.BytesIO(data)))  # type: ignore[no-any-return]


def _torch_members(data: bytes, suffix: str) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(n, archive.read(n)) for n in archive.namelist() if n.endswith(suffix)]


class _TorchScriptAllowlist(Allowlist):
    """TorchScript archives name their own compiled classes as ``__torch__.*`` and use
    ``torch.jit._pickle`` type-tag helpers; torch.jit.load's C++ unpickler resolves both
    itself (against the archive's TorchScript code), never by importing Python."""

    def allows(self, module: str, name: str) -> bool:
        own = module in {"__torch__", "torch.jit._pickle"} or module.startswith("__torch__.")
        return own or super().allows(module, name)


def scan_data(
    data: bytes, source: str, allowlist: Allowlist = DEFAULT
) -> tuple[Sniffed, ScanReport]:
    """Sniff and scan ``data``; raises on anything unsafe, returns what was seen."""
    sniffed = sniff(data)
    if sniffed.kind == "pickle":
        return sniffed, scan_stream(io.BytesIO(data), source, allowlist)
    if sniffed.kind.startswith("joblib-"):
        return sniffed, scan_stream(_decompressed(data, sniffed.kind), source, allowlist)
    if sniffed.kind in {"torch-zip", "torchscript"}:
        rules = (
            _TorchScriptAllowlist(allowlist.extra) if sniffed.kind == "torchscript" else allowlist
        )
        merged = ScanReport(source)
        for name, member in _torch_members(data, ".pkl"):
            report = scan_stream(
                io.BytesIO(member), f"{source}!{name}", rules, allow_persistent_ids=True
            )
            merged.globals += report.globals
            merged.pickles += report.pickles
            merged.persistent_ids += report.persistent_ids
        return sniffed, merged
    if sniffed.kind == "skops":
        return sniffed, _scan_skops(data, source, allowlist)
    raise UnsupportedFormatError(
        f"{source}: not a format safe_load understands ({sniffed.detail}). Supported: pickle, "
        "joblib (plain or compressed), torch.save / TorchScript archives, skops."
    )


def _scan_skops(data: bytes, source: str, allowlist: Allowlist) -> ScanReport:
    """skops never unpickles; it lists the types it would construct. Check them all."""
    from skops.io import get_untrusted_types

    report = ScanReport(source)
    for dotted in get_untrusted_types(data=data):
        module, _, name = dotted.rpartition(".")
        if not allowlist.allows(module, name):
            raise UnsafeArtifactError(dotted, None, source, f"skops file needs type {dotted}")
    return report


class _RestrictedUnpickler(pickle.Unpickler):
    """The C unpickler, with every global checked again at load time."""

    def __init__(self, file: IO[bytes], allowlist: Allowlist, source: str) -> None:
        super().__init__(file)
        self._allowlist = allowlist
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if not self._allowlist.allows(module, name):
            raise UnsafeArtifactError(f"{module}.{name}", None, self._source)
        return super().find_class(*normalize(module, name))


def _joblib_load(stream: IO[bytes], allowlist: Allowlist, source: str) -> Any:
    """joblib's NumpyUnpickler (which reads its inline arrays) with our find_class."""
    from joblib.numpy_pickle import NumpyUnpickler

    class Restricted(NumpyUnpickler):  # type: ignore[misc]
        def find_class(self, module: str, name: str) -> Any:
            if not allowlist.allows(module, name):
                raise UnsafeArtifactError(f"{module}.{name}", None, source)
            return super().find_class(*normalize(module, name))

    return Restricted(source, stream, ensure_native_byte_order=True).load()


def safe_load(
    path: str | Path,
    *,
    allowlist: Allowlist = DEFAULT,
    max_bytes: int = MAX_BYTES,
) -> Any:
    """Load a model file only if every global it needs is allowlisted (see module doc)."""
    path = Path(path)
    source = str(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise UnsupportedFormatError(f"{source}: {size:,} bytes is over the {max_bytes:,} limit")
    data = path.read_bytes()
    sniffed, report = scan_data(data, source, allowlist)

    if sniffed.kind == "pickle" or sniffed.kind.startswith("joblib-"):
        stream = io.BytesIO(data) if sniffed.kind == "pickle" else _decompressed(data, sniffed.kind)
        if report.joblib_arrays:
            return _joblib_load(stream, allowlist, source)
        return _RestrictedUnpickler(stream, allowlist, source).load()
    if sniffed.kind == "torch-zip":
        import torch

        return torch.load(io.BytesIO(data), weights_only=True)
    if sniffed.kind == "torchscript":
        import torch

        return torch.jit.load(io.BytesIO(data), map_location="cpu")  # type: ignore[no-untyped-call]
    if sniffed.kind == "skops":
        from skops.io import get_untrusted_types, loads

        return loads(data, trusted=get_untrusted_types(data=data))
    raise UnsupportedFormatError(f"{source}: cannot load {sniffed.kind}")  # unreachable


@dataclass(frozen=True)
class Verdict:
    path: Path
    kind: str
    safe: bool
    reason: str
    globals: tuple[str, ...] = ()


def scan_file(path: str | Path, allowlist: Allowlist = DEFAULT) -> Verdict:
    """Scan without loading: a verdict per file, never an exception for bad content."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        return Verdict(path, "unreadable", False, str(error))
    try:
        sniffed, report = scan_data(data, str(path), allowlist)
    except UnsafeArtifactError as error:
        return Verdict(path, sniff(data).kind, False, str(error).split(". Nothing")[0])
    except UnsupportedFormatError as error:
        return Verdict(path, "unknown", False, str(error))
    return Verdict(
        path, sniffed.kind, True, "only allowlisted globals", tuple(report.unique_globals)
    )
