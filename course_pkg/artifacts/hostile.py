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
import subprocess
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


# Protocol 0, written by hand: GLOBAL builtins.eval, MARK, UNICODE source, TUPLE, REDUCE, STOP.
_EVAL_TEXT = "cbuiltins\neval\n(V__import__('builtins').exec(\"CODE\")\ntR."

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
