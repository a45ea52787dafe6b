"""Scan pickle bytes opcode by opcode, before anything is deserialised.

How: a *symbolic* unpickler. It runs the stream through Python's own opcode dispatch (the
pure-Python ``pickle._Unpickler``), so it reads every opcode exactly as ``pickle.load`` would —
frames, memo, ``STACK_GLOBAL`` arguments built from memoised strings, protocol 0 text — but
it never imports or calls anything: each global is checked against the allowlist and replaced
by an inert ``Symbol``; ``REDUCE``/``NEWOBJ``/``INST``/``OBJ``/``BUILD`` only record.

Why not ``pickletools.genops`` alone: it lists opcodes but does not run the stack, so it cannot
tell which strings a ``STACK_GLOBAL`` takes once they come from the memo, and it stops at
joblib's raw array bytes that sit *inside* the opcode stream. The symbolic run handles both;
``pickletools`` is still what ``opcode_listing`` (the notebook's disassembly) uses.

Also covered: joblib's inline arrays (raw bytes skipped, object arrays scanned as nested
pickles), trailing data after ``STOP`` (scanned as another pickle, or refused), persistent ids
(allowed only inside torch archives). The first disallowed global raises
``UnsafeArtifactError`` naming ``module.name`` and the byte offset of its opcode.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import re
from dataclasses import dataclass, field
from typing import IO, Any

from course_pkg.artifacts.allowlist import DEFAULT, Allowlist, normalize
from course_pkg.artifacts.errors import UnsafeArtifactError

_JOBLIB_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
_DTYPE = ("numpy", "dtype")
_DOTTED = re.compile(rb"[A-Za-z_][\w.]*")


@dataclass(frozen=True)
class Global:
    module: str
    name: str
    offset: int

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass
class ScanReport:
    """What a scan saw: every global (in stream order) and whether joblib arrays were seen."""

    source: str
    globals: list[Global] = field(default_factory=list)
    pickles: int = 0
    joblib_arrays: int = 0
    persistent_ids: int = 0

    @property
    def unique_globals(self) -> list[str]:
        return sorted({g.dotted for g in self.globals})


class Symbol:
    """An inert stand-in for an imported global or the result of calling one."""

    __slots__ = ("args", "key", "state")

    def __init__(self, key: tuple[str, str], args: Any = ()) -> None:
        self.key = key
        self.args = args
        self.state: Any = None

    # Containers built by APPENDS/SETITEMS/ADDITEMS on a symbol: accept and forget.
    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass

    def add(self, item: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


class _CountingReader:
    """Wraps a binary file and counts the bytes handed out (for opcode offsets)."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        self.raw = raw
        self.consumed = 0
        self.limit = limit

    def _count(self, data: bytes) -> bytes:
        self.consumed += len(data)
        if self.consumed > self.limit:
            raise UnsafeArtifactError(
                "size limit", None, "stream", f"more than {self.limit:,} bytes (decompressed)"
            )
        return data

    def read(self, n: int = -1) -> bytes:
        return self._count(self.raw.read(n))

    def readline(self) -> bytes:
        return self._count(self.raw.readline())

    def peek_eof(self) -> bool:
        peek = getattr(self.raw, "peek", None)
        if peek is not None:
            return not peek(1)
        data = self.raw.read(1)
        if not data:
            return True
        self.raw.seek(-1, io.SEEK_CUR)
        return False


class _SymbolicUnpickler(pickle._Unpickler):
    dispatch = pickle._Unpickler.dispatch.copy()

    def __init__(
        self,
        reader: _CountingReader,
        report: ScanReport,
        allowlist: Allowlist,
        allow_persistent_ids: bool,
        base_offset: int = 0,
    ) -> None:
        super().__init__(reader, encoding="bytes")
        self.reader = reader
        self.report = report
        self.allowlist = allowlist
        self.allow_persistent_ids = allow_persistent_ids
        self.op_offset = 0

    # --- offsets ---------------------------------------------------------------------------
    def _position(self) -> int:
        frame = getattr(self._unframer, "current_frame", None)
        pending = len(frame.getbuffer()) - frame.tell() if frame else 0
        return int(self.reader.consumed - pending)

    def _refuse(self, what: str, detail: str = "") -> UnsafeArtifactError:
        return UnsafeArtifactError(what, self.op_offset, self.report.source, detail)

    def _start(self) -> None:
        """The state ``pickle._Unpickler.load`` sets up before its opcode loop."""
        self._unframer = pickle._Unframer(self._file_read, self._file_readline)  # type: ignore[attr-defined]
        self.read = self._unframer.read
        self.readinto = self._unframer.readinto
        self.readline = self._unframer.readline
        self.metastack: list[Any] = []
        self.stack: list[Any] = []
        self.append = self.stack.append
        self.proto = 0

    def _step(self) -> None:
        """Read and run one opcode (raises ``pickle._Stop`` at STOP)."""
        self.op_offset = self._position()
        key = self.read(1)
        if not key:
            raise self._refuse("truncated", "the pickle ends before its STOP opcode")
        handler = self.dispatch.get(key[0])
        if handler is None:
            raise self._refuse("bad opcode", f"unknown opcode byte {key!r}")
        handler(self)  # type: ignore[arg-type]

    def run(self) -> None:
        """``pickle._Unpickler.load`` with the opcode offset recorded before each opcode."""
        self._start()
        try:
            while True:
                self._step()
        except pickle._Stop:  # type: ignore[attr-defined]
            return

    # --- globals: check, never import ------------------------------------------------------
    def find_class(self, module: str, name: str) -> Symbol:
        if isinstance(module, bytes | bytearray):
            module = module.decode("utf-8", "replace")
        if isinstance(name, bytes | bytearray):
            name = name.decode("utf-8", "replace")
        if not isinstance(module, str) or not isinstance(name, str):
            raise self._refuse("non-string global", "STACK_GLOBAL with non-string arguments")
        module, name = normalize(module, name)
        self.report.globals.append(Global(module, name, self.op_offset))
        if not self.allowlist.allows(module, name):
            raise self._refuse(f"{module}.{name}")
        return Symbol((module, name))

    # --- calls and instantiation: record only ----------------------------------------------
    def load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        self.stack[-1] = Symbol(self._key(func), args)

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(Symbol(self._key(cls), args))

    def load_newobj_ex(self) -> None:
        self.stack.pop()  # kwargs
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(Symbol(self._key(cls), args))

    def load_inst(self) -> None:
        module = self.readline()[:-1].decode("ascii")
        name = self.readline()[:-1].decode("ascii")
        cls = self.find_class(module, name)
        self.append(Symbol(cls.key, self.pop_mark()))  # type: ignore[attr-defined]

    def load_obj(self) -> None:
        args = self.pop_mark()  # type: ignore[attr-defined]
        cls = args.pop(0)
        self.append(Symbol(self._key(cls), args))

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, Symbol):
            inst.state = state
            if inst.key == _JOBLIB_WRAPPER:
                self._skip_joblib_array(state)

    def _key(self, obj: Any) -> tuple[str, str]:
        if isinstance(obj, Symbol):
            return obj.key
        # Calling something that did not come from a checked global (e.g. a plain string):
        # real unpickling would fail or, worse, call it. Refuse.
        raise self._refuse("call of a non-global", f"calls a {type(obj).__name__} object")

    # --- persistent ids (torch archives) ---------------------------------------------------
    def persistent_load(self, pid: Any) -> Symbol:
        if not self.allow_persistent_ids:
            raise self._refuse(
                "persistent id", "uses persistent ids, which only torch archives may contain"
            )
        self.report.persistent_ids += 1
        return Symbol(("<persistent>", "id"), pid)

    # --- joblib's inline arrays ------------------------------------------------------------
    def _skip_joblib_array(self, state: Any) -> None:
        """Skip (or scan) the array data joblib writes right after a NumpyArrayWrapper."""
        import numpy as np

        if not isinstance(state, dict):
            raise self._refuse("joblib wrapper", "NumpyArrayWrapper without a state dict")
        state = {k.decode() if isinstance(k, bytes) else k: v for k, v in state.items()}
        itemsize, has_objects = self._dtype(state.get("dtype"))
        self.report.joblib_arrays += 1
        if has_objects:
            # Object arrays are a nested pickle stream; scan it with the same rules.
            nested = _SymbolicUnpickler(
                self.reader, self.report, self.allowlist, self.allow_persistent_ids
            )
            nested.run()
            return
        shape = state.get("shape")
        if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise self._refuse("joblib wrapper", f"bad array shape {shape!r}")
        if state.get("numpy_array_alignment_bytes") is not None:
            padding = self.reader.read(1)
            self.reader.read(int.from_bytes(padding or b"\0", "little"))
        nbytes = int(np.prod(shape, dtype=np.int64)) * itemsize
        remaining = nbytes
        while remaining:
            chunk = self.reader.read(min(remaining, 1 << 24))
            if not chunk:
                raise self._refuse("truncated", "joblib array data ends early")
            remaining -= len(chunk)

    def _dtype(self, symbol: Any) -> tuple[int, bool]:
        """(item size, holds Python objects) of a pickled numpy dtype, from plain data only.

        numpy pickles a dtype as ``dtype(typestr, align, copy)`` + a state tuple
        ``(version, byteorder, subarray, names, fields, elsize, alignment, flags)``; flexible
        and structured types carry their size in ``elsize``, and flag bit 0 marks dtypes that
        hold object references (joblib then writes a nested pickle instead of raw bytes).
        """
        import numpy as np

        if not (isinstance(symbol, Symbol) and symbol.key == _DTYPE and symbol.args):
            raise self._refuse("joblib wrapper", "array dtype is not a numpy.dtype")
        spec = symbol.args[0]
        if isinstance(spec, bytes):
            spec = spec.decode("ascii")
        state = symbol.state
        if not isinstance(spec, str) or not isinstance(state, tuple) or len(state) < 8:
            raise self._refuse("joblib wrapper", f"unexpected dtype encoding {spec!r}")
        elsize, flags = state[5], state[7]
        if not isinstance(elsize, int) or not isinstance(flags, int):
            raise self._refuse("joblib wrapper", "dtype size or flags are not integers")
        try:
            itemsize = elsize if elsize > 0 else np.dtype(spec).itemsize
        except TypeError as error:
            raise self._refuse("joblib wrapper", f"bad dtype {spec!r}") from error
        return itemsize, bool(flags & 1)


for _opcode, _method in (
    (pickle.REDUCE, _SymbolicUnpickler.load_reduce),
    (pickle.NEWOBJ, _SymbolicUnpickler.load_newobj),
    (pickle.NEWOBJ_EX, _SymbolicUnpickler.load_newobj_ex),
    (pickle.INST, _SymbolicUnpickler.load_inst),
    (pickle.OBJ, _SymbolicUnpickler.load_obj),
    (pickle.BUILD, _SymbolicUnpickler.load_build),
):
    _SymbolicUnpickler.dispatch[_opcode[0]] = _method  # type: ignore[assignment]


def scan_stream(
    stream: IO[bytes],
    source: str,
    allowlist: Allowlist = DEFAULT,
    *,
    allow_persistent_ids: bool = False,
    max_bytes: int = 4 << 30,
) -> ScanReport:
    """Scan every pickle in ``stream`` (a seekable binary file) and return what it saw.

    Raises ``UnsafeArtifactError`` on the first disallowed global, on calls of non-globals, on
    malformed or truncated streams and on trailing bytes that are not another valid pickle.
    """
    report = ScanReport(source)
    reader = _CountingReader(stream, max_bytes)
    while True:
        unpickler = _SymbolicUnpickler(reader, report, allowlist, allow_persistent_ids)
        try:
            unpickler.run()
        except UnsafeArtifactError:
            raise
        except Exception as error:  # malformed stream: refuse, never guess
            raise UnsafeArtifactError(
                "malformed pickle",
                unpickler.op_offset,
                source,
                f"not a valid pickle stream ({type(error).__name__}: {error})",
            ) from error
        report.pickles += 1
        if reader.peek_eof():
            return report
        # Bytes after STOP: a second pickle (scan it: a naive loop would load it too) or junk.


def first_opcode_is_valid(data: bytes) -> bool:
    """Whether ``data`` starts with an opcode ``pickle`` itself would accept.

    Judged by pickle's own dispatch, not ``pickletools`` (which rejects spellings pickle
    accepts, such as ``I0x1``): a protocol-0 pickle may start with any opcode. GLOBAL/INST
    must name identifiers (text such as CSV can start with ``c`` or ``i``); nothing is
    imported.
    """
    if data[:1] in (pickle.GLOBAL, pickle.INST):
        lines = data[1:].split(b"\n", 2)
        return len(lines) == 3 and all(_DOTTED.fullmatch(line) for line in lines[:2])
    unpickler = _SymbolicUnpickler(
        _CountingReader(io.BytesIO(data), len(data)), ScanReport("<sniff>"), DEFAULT, False
    )
    unpickler._start()
    try:
        unpickler._step()
    except pickle._Stop:  # type: ignore[attr-defined]
        return False  # a lone STOP on an empty stack fails in pickle too
    except Exception:
        return False
    return True


def scan_bytes(data: bytes, source: str = "<bytes>", allowlist: Allowlist = DEFAULT) -> ScanReport:
    return scan_stream(io.BytesIO(data), source, allowlist)


def opcode_listing(data: bytes, limit: int = 40) -> str:
    """A ``pickletools`` disassembly of the first ``limit`` opcodes (for teaching)."""
    lines = []
    for index, (opcode, arg, pos) in enumerate(pickletools.genops(data)):
        if index >= limit:
            lines.append("…")
            break
        shown = "" if arg is None else repr(arg)[:60]
        lines.append(f"{pos:>6}: {opcode.name:<16} {shown}")
    return "\n".join(lines)
