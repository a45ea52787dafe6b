"""Load pickle-family and skops files only after proving they cannot run code.

``safe_load(path)``:
1. reads the file once into memory (so what is scanned is exactly what is loaded — no
   time-of-check/time-of-use gap), refusing files over ``max_bytes``;
2. sniffs the *content*, never the extension: zip (torch archive, TorchScript, skops, numpy
   ``.npz``), numpy ``.npy``, joblib-compressed (zlib/gzip/bz2/lzma/xz), or a raw pickle
   (protocol 0-5, recognised by pickle's own reading of its first opcode);
3. scans every pickle stream inside (``pickle_scan``; zip members via ``archives``, which
   refuses case-ambiguous names and bad CRCs) against the allowlist;
4. only then deserialises, with a restricted unpickler whose ``find_class`` enforces the same
   allowlist (second line of defence), ``torch.load(weights_only=True)`` trusting exactly
   the scanned globals, ``torch.jit.load``, ``numpy.load(allow_pickle=False)`` or
   ``skops.io.load`` with exactly the types our allowlist accepts.

Every refusal is an ``ArtifactError`` (``UnsafeArtifactError`` naming the global or reason
and the byte offset; ``UnsupportedFormatError``/``MalformedArtifactError`` for bytes that are
not, or not a readable, model file): no torch, zipfile, numpy or pickle exception escapes.
"""

from __future__ import annotations

import importlib
import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from course_pkg.artifacts import archives
from course_pkg.artifacts.allowlist import DEFAULT, Allowlist, normalize
from course_pkg.artifacts.errors import (
    ArtifactError,
    MalformedArtifactError,
    UnsafeArtifactError,
    UnsupportedFormatError,
)
from course_pkg.artifacts.pickle_scan import ScanReport, first_opcode_is_valid, scan_stream

MAX_BYTES = 2 << 30  # 2 GiB: a model bigger than this is not a course artifact
_ZIP = b"PK\x03\x04"
_NPY = b"\x93NUMPY"


@dataclass(frozen=True)
class Sniffed:
    kind: (
        str  # pickle | joblib-<compressor> | torch-zip | torchscript | skops | npy | npz | unknown
    )
    detail: str = ""


def sniff(data: bytes) -> Sniffed:
    """What the bytes are, from their content (magic numbers and zip members)."""
    if data.startswith(_ZIP):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            return Sniffed("unknown", "damaged zip archive")
        kind = archives.kind_of(names)
        if kind == "unknown":
            return Sniffed(kind, "a zip archive that is neither a torch, skops nor .npz file")
        return Sniffed(kind)
    if data.startswith(_NPY):
        return Sniffed("npy")
    from joblib.numpy_pickle_utils import _COMPRESSORS  # joblib's own magic-number table

    for name, compressor in _COMPRESSORS.items():
        if compressor.prefix and data.startswith(compressor.prefix):
            return Sniffed(f"joblib-{name}")
    if data[:1] == b"\x80" and (len(data) < 2 or data[1] > pickle.HIGHEST_PROTOCOL):
        return Sniffed("unknown", "pickle PROTO opcode with an unknown protocol")
    if first_opcode_is_valid(data):
        return Sniffed("pickle")
    return Sniffed("unknown", f"unrecognised first bytes {data[:8]!r}")


def _decompressed(data: bytes, kind: str) -> IO[bytes]:
    """joblib's own decompressor for ``kind`` over ``data``, as a buffered stream."""
    from joblib.numpy_pickle_utils import _COMPRESSORS, _buffered_read_file

    wrapper = _COMPRESSORS[kind.removeprefix("joblib-")]
    return _buffered_read_file(wrapper.decompressor_file(io.BytesIO(data)))  # type: ignore[no-any-return]


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
    """Sniff and scan ``data``; raises an ``ArtifactError`` on anything unsafe or unreadable."""
    try:
        return _scan_data(data, source, allowlist)
    except ArtifactError:
        raise
    except Exception as error:  # a library choking on crafted bytes: refuse, never crash
        raise MalformedArtifactError(source, f"{type(error).__name__}: {error}") from error


def _scan_data(data: bytes, source: str, allowlist: Allowlist) -> tuple[Sniffed, ScanReport]:
    sniffed = sniff(data)
    if sniffed.kind == "pickle":
        return sniffed, scan_stream(io.BytesIO(data), source, allowlist)
    if sniffed.kind.startswith("joblib-"):
        return sniffed, scan_stream(_decompressed(data, sniffed.kind), source, allowlist)
    if sniffed.kind in {"torch-zip", "torchscript", "npz", "skops"}:
        members = archives.read_members(data, source)  # CRC-checked, names unambiguous
    if sniffed.kind in {"torch-zip", "torchscript"}:
        rules = (
            _TorchScriptAllowlist(allowlist.extra) if sniffed.kind == "torchscript" else allowlist
        )
        merged = ScanReport(source)
        for member in members:
            if not archives.is_pickle_member(member.name):
                continue
            report = scan_stream(
                io.BytesIO(member.data), f"{source}!{member.name}", rules, allow_persistent_ids=True
            )
            merged.globals += report.globals
            merged.pickles += report.pickles
            merged.persistent_ids += report.persistent_ids
        return sniffed, merged
    if sniffed.kind == "skops":
        return sniffed, _scan_skops(data, source, allowlist)
    if sniffed.kind == "npy":
        _check_npy_header(io.BytesIO(data), source)
        return sniffed, ScanReport(source)
    if sniffed.kind == "npz":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in archive.namelist():
                with archive.open(name) as handle:
                    _check_npy_header(handle, f"{source}!{name}")
        return sniffed, ScanReport(source)
    raise UnsupportedFormatError(
        f"{source}: not a format safe_load understands ({sniffed.detail}). Supported: pickle, "
        "joblib (plain or compressed), torch.save / TorchScript archives, skops, numpy .npy/.npz."
    )


def _check_npy_header(handle: IO[bytes], source: str) -> None:
    """A .npy whose dtype holds Python objects stores a pickle after its header: refuse it
    (numpy.load would only unpickle it with allow_pickle=True, which safe_load never sets)."""
    import numpy as np
    from numpy.lib import format as npy_format

    try:
        version = npy_format.read_magic(handle)
        reader = (
            npy_format.read_array_header_1_0
            if version == (1, 0)
            else npy_format.read_array_header_2_0
        )
        _, _, dtype = reader(handle)
    except ValueError as error:
        raise MalformedArtifactError(source, f"bad .npy header ({error})") from error
    if dtype.hasobject:
        raise UnsafeArtifactError(
            "object array",
            None,
            source,
            f"a .npy array of dtype {np.dtype(dtype)!s} holds Python objects, stored as a pickle",
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
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UnsupportedFormatError(
                f"{source}: {size:,} bytes is over the {max_bytes:,} limit"
            )
        data = path.read_bytes()
    except OSError as error:
        raise UnsupportedFormatError(f"{source}: cannot read the file ({error})") from error
    sniffed, report = scan_data(data, source, allowlist)
    try:
        return _deserialise(data, sniffed, report, allowlist, source)
    except ArtifactError:
        raise
    except pickle.UnpicklingError as error:  # torch's weights_only unpickler refusing a global
        raise UnsafeArtifactError(
            "torch weights_only refusal",
            None,
            source,
            f"torch.load(weights_only=True) refused it: {str(error).splitlines()[0]}",
        ) from error
    except Exception as error:
        raise MalformedArtifactError(
            source, f"{sniffed.kind} loader failed: {type(error).__name__}: {error}"
        ) from error


def _deserialise(
    data: bytes, sniffed: Sniffed, report: ScanReport, allowlist: Allowlist, source: str
) -> Any:
    if sniffed.kind == "pickle" or sniffed.kind.startswith("joblib-"):
        stream = io.BytesIO(data) if sniffed.kind == "pickle" else _decompressed(data, sniffed.kind)
        if report.joblib_arrays:
            return _joblib_load(stream, allowlist, source)
        return _RestrictedUnpickler(stream, allowlist, source).load()
    if sniffed.kind == "torch-zip":
        import torch

        # torch's own restricted unpickler, trusting exactly the globals our scan allowed
        # (e.g. the nn.Module classes of a whole saved model).
        trusted = [_resolve(g.module, g.name) for g in report.globals]
        with torch.serialization.safe_globals(trusted):
            return torch.load(io.BytesIO(data), weights_only=True)
    if sniffed.kind == "torchscript":
        import torch

        return torch.jit.load(io.BytesIO(data), map_location="cpu")  # type: ignore[no-untyped-call]
    if sniffed.kind == "skops":
        from skops.io import get_untrusted_types, loads

        return loads(data, trusted=get_untrusted_types(data=data))
    if sniffed.kind in {"npy", "npz"}:
        import numpy as np

        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        if sniffed.kind == "npz":
            with loaded:
                return {name: loaded[name] for name in loaded.files}
        return loaded
    raise UnsupportedFormatError(f"{source}: cannot load {sniffed.kind}")  # unreachable


def _resolve(module: str, name: str) -> Any:
    """An allowlisted global (plain identifiers only, already checked) as pickle resolves it."""
    return getattr(importlib.import_module(module), name)


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
    except ArtifactError as error:
        return Verdict(path, "unknown", False, str(error))
    return Verdict(
        path, sniffed.kind, True, "only allowlisted globals", tuple(report.unique_globals)
    )
