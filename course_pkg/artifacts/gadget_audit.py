"""Audit an allowlist: can any allowlisted callable be turned into code execution?

A pickle can call every allowlisted global with arguments of its choosing, call the results,
and trigger a few methods on what it built (``__setstate__`` via BUILD, ``append``/``extend``
/``__setitem__``/``add`` via APPENDS/SETITEMS/ADDITEMS, ``__call__`` via REDUCE on an
instance, ``__getattr__`` when BUILD looks up ``__setstate__``, ``__hash__``/``__eq__`` as dict
keys). So one allowlisted ``builtins.getattr``, ``pydoc.locate`` or ``pickle.loads`` is enough
to run anything. This module checks, for every allowlisted (module, name):

1. *what it is*: not one of the known code-execution primitives (``GADGETS``: exec/eval/compile,
   import machinery and resolvers, arbitrary getattr, os/subprocess/pty, pickle/marshal/torch/
   numpy/joblib loaders, partial/methodcaller …), not a module, not a function of a dangerous
   module, not a builtins function;
2. *what its Python code names*: the bytecode of a function, or of each pickle-reachable method
   a class defines, must not reference those primitives by name (``CODE_NAMES``).

Compiled code (Cython types and functions) has no bytecode to read: point 1 still applies, and
:mod:`course_pkg.artifacts.sklearn_globals` says why each kind it grants is inert.
"""

from __future__ import annotations

import importlib
import types
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

GADGETS: tuple[str, ...] = (
    "builtins.eval",
    "builtins.exec",
    "builtins.compile",
    "builtins.getattr",
    "builtins.setattr",
    "builtins.delattr",
    "builtins.__import__",
    "builtins.open",
    "builtins.globals",
    "builtins.vars",
    "builtins.breakpoint",
    "importlib.import_module",
    "importlib.reload",
    "importlib.__import__",
    "importlib.util.spec_from_file_location",
    "importlib.util.module_from_spec",
    "pydoc.locate",
    "pydoc.pipepager",
    "pkgutil.resolve_name",
    "runpy.run_path",
    "runpy.run_module",
    "code.interact",
    "code.InteractiveInterpreter",
    "code.InteractiveConsole",
    "timeit.timeit",
    "cProfile.run",
    "operator.attrgetter",
    "operator.methodcaller",
    "functools.partial",
    "functools.reduce",
    "types.FunctionType",
    "types.CodeType",
    "os.system",
    "os.popen",
    "os.execv",
    "os.execvp",
    "os.spawnv",
    "os.fork",
    "subprocess.Popen",
    "subprocess.call",
    "subprocess.run",
    "subprocess.check_call",
    "subprocess.check_output",
    "subprocess.getoutput",
    "pty.spawn",
    "pickle.load",
    "pickle.loads",
    "pickle.Unpickler",
    "_pickle.load",
    "_pickle.loads",
    "marshal.load",
    "marshal.loads",
    "shelve.open",
    "ctypes.CDLL",
    "webbrowser.open",
    "numpy.load",
    "joblib.load",
    "torch.load",
    "torch.jit.load",
    "torch.hub.load",
    "pip.main",
)
# Modules whose functions are process, import or deserialisation machinery.
DANGEROUS_MODULES = frozenset(
    {
        "builtins", "os", "posix", "nt", "subprocess", "pty", "importlib", "pydoc", "pkgutil",
        "runpy", "code", "codeop", "marshal", "pickle", "_pickle", "shelve", "ctypes",
        "sys", "socket", "shutil", "webbrowser", "timeit", "cProfile", "profile", "pip",
    }
)  # fmt: skip
CODE_NAMES = frozenset(
    {
        "eval", "exec", "compile", "__import__", "import_module", "locate", "resolve_name",
        "run_path", "run_module", "system", "popen", "Popen", "spawn", "execv", "execvp",
        "loads", "Unpickler", "marshal", "attrgetter", "methodcaller", "globals",
    }
)  # fmt: skip
# Methods unpickling can trigger on an object it built (see module docstring).
PICKLE_REACHABLE = (
    "__new__", "__init__", "__call__", "__setstate__", "__setitem__", "append", "extend",
    "add", "__getattr__", "__setattr__", "__hash__", "__eq__", "__reduce__",
)  # fmt: skip


def resolve(dotted_module: str, name: str) -> Any:
    """``module.name`` the way ``pickle`` resolves it (raises if it does not exist)."""
    with warnings.catch_warnings():  # numpy.core.* (old pickles' spelling) warns on import
        warnings.simplefilter("ignore", DeprecationWarning)
        obj: Any = importlib.import_module(dotted_module)
        for part in name.split("."):
            obj = getattr(obj, part)
    return obj


def _gadget_objects() -> dict[int, str]:
    found: dict[int, str] = {}
    for dotted in GADGETS:
        module, _, name = dotted.rpartition(".")
        try:
            found[id(resolve(module, name))] = dotted
        except (ImportError, AttributeError):
            continue
    return found


def _code_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_names(const)


def _python_code(obj: Any) -> Iterator[tuple[str, types.CodeType]]:
    """(label, code) of a Python function, or of each pickle-reachable method of a class."""
    if isinstance(obj, types.FunctionType):
        yield obj.__qualname__, obj.__code__
        return
    if isinstance(obj, type):
        for klass in obj.__mro__:
            if klass.__module__ == "builtins":
                continue
            for method in PICKLE_REACHABLE:
                func = vars(klass).get(method)
                func = getattr(func, "__func__", func)  # staticmethod / classmethod
                if isinstance(func, types.FunctionType):
                    yield f"{klass.__qualname__}.{method}", func.__code__


def audit(pairs: Iterable[tuple[str, str]]) -> list[str]:
    """One line per allowlisted (module, name) that could reach code execution; [] if none."""
    gadgets = _gadget_objects()
    problems: list[str] = []
    for module, name in pairs:
        dotted = f"{module}.{name}"
        try:
            obj = resolve(module, name)
        except (ImportError, AttributeError):
            continue  # not installed here: cannot be imported by a pickle either
        if id(obj) in gadgets:
            problems.append(f"{dotted} is the code-execution primitive {gadgets[id(obj)]}")
            continue
        if isinstance(obj, types.ModuleType):
            problems.append(f"{dotted} is a module (any attribute reachable)")
            continue
        home = (getattr(obj, "__module__", None) or module).split(".")[0]
        if not isinstance(obj, type) and (home in DANGEROUS_MODULES or module in DANGEROUS_MODULES):
            problems.append(f"{dotted} is a function of {home}, process/import machinery")
            continue
        for label, code in _python_code(obj):
            named = sorted(set(_code_names(code)) & CODE_NAMES)
            if named:
                problems.append(f"{dotted}: {label} references {', '.join(named)}")
    return problems


def default_pairs() -> dict[tuple[str, str], str]:
    """Every (module, name) the default allowlist grants in this environment, with its reason.

    ``EXACT`` plus each rule expanded over the installed packages (imports all of
    scikit-learn and torch.nn: seconds, for audits and docs only).
    """
    import pkgutil

    import numpy as np
    import scipy.sparse

    from course_pkg.artifacts import sklearn_globals
    from course_pkg.artifacts.allowlist import EXACT, rule_reason

    pairs = dict(EXACT)
    pairs.update(sklearn_globals.all_globals())
    candidates = [("numpy", n) for n, v in vars(np).items() if isinstance(v, type)]
    sparse_modules = [
        info.name for info in pkgutil.walk_packages(scipy.sparse.__path__, "scipy.sparse.")
    ]
    try:
        import torch.nn.modules

        torch_modules = [
            info.name
            for info in pkgutil.walk_packages(torch.nn.modules.__path__, "torch.nn.modules.")
        ]
    except ImportError:
        torch_modules = []
    for module in sparse_modules + torch_modules:
        if "tests" in module.split("."):
            continue
        try:
            imported = importlib.import_module(module)
        except Exception:
            continue
        candidates += [(module, n) for n, v in vars(imported).items() if isinstance(v, type)]
    for module, name in candidates:
        why = rule_reason(module, name)
        if why is not None:
            pairs[(module, name)] = why
    return pairs


__all__ = ["CODE_NAMES", "GADGETS", "PICKLE_REACHABLE", "audit", "default_pairs", "resolve"]
