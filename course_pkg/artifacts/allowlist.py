"""Which globals a model pickle may import: an allowlist, never a denylist.

A denylist (``os.system``, ``builtins.eval``, …) has to name every dangerous callable in every
installed package, forever; one forgotten ``functools.partial`` or ``importlib`` chain and
the file runs code. An allowlist names the few things a fitted model legitimately needs —
scikit-learn estimator classes, numpy's array/dtype/scalar reconstructors, a handful of
builtins — and refuses everything else, including the next gadget nobody has thought of.

What the default allows, and why each entry is harmless to *reconstruct*:
- builtins containers and scalars (``set``, ``frozenset``, ``slice``, ``complex``, …),
  ``copyreg._reconstructor`` (``object.__new__`` of a class that is itself checked) and
  ``_codecs.encode`` (how protocol-2 pickles store bytes);
- numpy: ``ndarray``/``dtype``, scalar types, ``_reconstruct``/``scalar``/``_frombuffer``, and
  the random generator state helpers (estimators keep a ``RandomState``);
- scikit-learn: classes (never functions) that subclass ``BaseEstimator``, plus the Cython
  helper types models are made of (trees, losses, link functions, KD/Ball trees);
- scipy.sparse matrix/array classes; joblib's ``NumpyArrayWrapper`` (array placeholder);
- torch tensor rebuild helpers, storage types and dtypes (for ``torch.save`` archives).

Limits, said plainly: the allowlist stops code execution during loading. It does not make a
crafted but allowlisted object *behave* (a tree with corrupt node arrays can still mispredict);
that is what signatures and manifests (``course_pkg.artifacts.signing``) are for.
"""

from __future__ import annotations

import _compat_pickle
import importlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_NUMPY_CORE = ("numpy._core", "numpy.core")  # numpy 2 moved core → _core; old pickles say core

EXACT: frozenset[tuple[str, str]] = frozenset(
    {
        ("builtins", name)
        for name in (
            "object",
            "set",
            "frozenset",
            "slice",
            "complex",
            "bytearray",
            "bytes",
            "range",
            "bool",
            "int",
            "float",
            "str",
            "tuple",
            "list",
            "dict",
        )
    }
    | {
        ("copyreg", "_reconstructor"),
        ("_codecs", "encode"),
        ("collections", "OrderedDict"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("numpy.random._pickle", "__bit_generator_ctor"),
        ("numpy.random._pickle", "__generator_ctor"),
        ("numpy.random._pickle", "__randomstate_ctor"),
        ("numpy.random.bit_generator", "SeedSequence"),
        ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
        ("numpy.random.mtrand", "RandomState"),
        ("numpy.random._generator", "Generator"),
        ("numpy.random._mt19937", "MT19937"),
        ("numpy.random._pcg64", "PCG64"),
        ("numpy.random._pcg64", "PCG64DXSM"),
        ("numpy.random._philox", "Philox"),
        ("numpy.random._sfc64", "SFC64"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch", "Size"),
        ("torch.storage", "UntypedStorage"),
        ("torch.storage", "TypedStorage"),
    }
    | {
        (f"{core}.{module}", name)
        for core in _NUMPY_CORE
        for module, name in (
            ("multiarray", "_reconstruct"),
            ("multiarray", "scalar"),
            ("numeric", "_frombuffer"),
        )
    }
    | {
        ("torch", f"{kind}Storage")
        for kind in (
            "Float",
            "Double",
            "Half",
            "BFloat16",
            "Long",
            "Int",
            "Short",
            "Char",
            "Byte",
            "Bool",
            "ComplexFloat",
            "ComplexDouble",
        )
    }
    | {
        ("torch", dtype)
        for dtype in (
            "float32",
            "float64",
            "float16",
            "bfloat16",
            "int64",
            "int32",
            "int16",
            "int8",
            "uint8",
            "bool",
            "complex64",
            "complex128",
        )
    }
)

# scikit-learn modules whose non-estimator classes are building blocks of fitted models.
SKLEARN_HELPER_MODULES: tuple[str, ...] = (
    "sklearn._loss.",
    "sklearn.tree._tree",
    "sklearn.ensemble._hist_gradient_boosting.",
    "sklearn.neighbors._kd_tree",
    "sklearn.neighbors._ball_tree",
    "sklearn.utils._bunch",
)


def normalize(module: str, name: str) -> tuple[str, str]:
    """Map Python 2 names the way ``pickle`` does (``__builtin__`` → ``builtins``)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _resolve_class(module: str, name: str) -> type | None:
    """The class ``module.name`` if ``module`` is already-trusted installed code, else None.

    Only called for module prefixes we trust (sklearn, scipy.sparse, numpy), whose import has
    no side effects beyond defining things; ``name`` must be a plain identifier (no dotted
    attribute walks) and the result must be a class — functions are never allowed by rule.
    """
    if not (_MODULE.match(module) and _NAME.match(name)):
        return None
    try:
        obj = getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None
    return obj if isinstance(obj, type) else None


@lru_cache(maxsize=4096)
def _allowed_by_rule(module: str, name: str) -> bool:
    if module == "numpy":
        import numpy as np

        cls = _resolve_class(module, name)
        return cls is not None and issubclass(cls, np.generic)
    if module.startswith("sklearn."):
        cls = _resolve_class(module, name)
        if cls is None:
            return False
        from sklearn.base import BaseEstimator

        helper = any(module == m or module.startswith(m) for m in SKLEARN_HELPER_MODULES)
        return issubclass(cls, BaseEstimator) or helper
    if module.startswith("scipy.sparse."):
        cls = _resolve_class(module, name)
        if cls is None:
            return False
        from scipy.sparse import sparray, spmatrix

        return issubclass(cls, (spmatrix, sparray))
    return False


@dataclass(frozen=True)
class Allowlist:
    """The default rules plus ``extra`` exact globals (``"module.name"`` strings)."""

    extra: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    def allows(self, module: str, name: str) -> bool:
        module, name = normalize(module, name)
        return (
            (module, name) in EXACT
            or (module, name) in self.extra
            or _allowed_by_rule(module, name)
        )

    def with_globals(self, names: Iterable[str]) -> Allowlist:
        """A new allowlist that also allows each exact ``module.name`` (a class you trust)."""
        added = set(self.extra)
        for dotted in names:
            module, _, name = dotted.rpartition(".")
            if not module or not _NAME.match(name) or not _MODULE.match(module):
                raise ValueError(
                    f"{dotted!r}: give an exact 'module.Name', e.g. 'mypkg.models.Net'"
                )
            added.add((module, name))
        return Allowlist(frozenset(added))


DEFAULT = Allowlist()

__all__ = ["DEFAULT", "EXACT", "Allowlist", "normalize"]
