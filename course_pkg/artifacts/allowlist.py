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


def _group(reason: str, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    return dict.fromkeys(pairs, reason)


_TORCH_STORAGE_KINDS = (
    "Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool",
    "ComplexFloat", "ComplexDouble",
)  # fmt: skip
_TORCH_DTYPES = (
    "float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8",
    "bool", "complex64", "complex128",
)  # fmt: skip

EXACT: dict[tuple[str, str], str] = {
    **_group(
        "builtin container or scalar type: calling it builds plain data",
        (
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
        ),
    ),
    ("copyreg", "_reconstructor"): "object.__new__ of a class that is itself checked",
    ("_codecs", "encode"): "how protocol-2 pickles store bytes (str -> bytes, no code)",
    ("collections", "OrderedDict"): "ordered dict (torch state_dicts, sklearn attributes)",
    ("numpy", "ndarray"): "numpy array type",
    ("numpy", "dtype"): "numpy dtype (its state is plain data)",
    ("numpy", "mean"): "FeatureAgglomeration's default pooling_func (a reduction over arrays)",
    ("joblib.numpy_pickle", "NumpyArrayWrapper"): "joblib's placeholder for inline array bytes",
    **_group(
        "numpy random generator state (estimators keep a RandomState)",
        (
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
        ),
    ),
    **_group(
        "numpy array and scalar reconstructors (numpy 2 says _core, older pickles core)",
        (
            (f"{core}.{module}", name)
            for core in _NUMPY_CORE
            for module, name in (
                ("multiarray", "_reconstruct"),
                ("multiarray", "scalar"),
                ("numeric", "_frombuffer"),
            )
        ),
    ),
    ("scipy.interpolate._bsplines", "BSpline"): "SplineTransformer's fitted B-splines",
    ("scipy._lib.array_api_compat.numpy._aliases", "asarray"): (
        "the array-namespace asarray scipy's BSpline keeps (numpy.asarray, data only)"
    ),
    **_group(
        "torch tensor rebuild helpers and shapes (torch.save archives)",
        (
            ("torch._utils", "_rebuild_tensor_v2"),
            ("torch._utils", "_rebuild_parameter"),
            ("torch", "Size"),
            ("torch", "device"),
        ),
    ),
    **_group(
        "torch storage types (tensor bytes live in the archive's data/ members)",
        [("torch.storage", "UntypedStorage"), ("torch.storage", "TypedStorage")]
        + [("torch", f"{kind}Storage") for kind in _TORCH_STORAGE_KINDS],
    ),
    **_group("torch dtype", (("torch", dtype) for dtype in _TORCH_DTYPES)),
}


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
def rule_reason(module: str, name: str) -> str | None:
    """Why a global outside ``EXACT`` is allowed by a rule over the installed packages, or None.

    Each rule resolves the one exact (module, name) the pickle names, in code already trusted
    (installed numpy, scikit-learn, scipy.sparse, torch.nn) and grants it only if it is a
    class of the right kind *defined in that module*; never a whole module or prefix.
    """
    if module == "numpy":
        import numpy as np

        cls = _resolve_class(module, name)
        return "numpy scalar type" if cls is not None and issubclass(cls, np.generic) else None
    if module == "sklearn" or module.startswith("sklearn."):
        from course_pkg.artifacts import sklearn_globals

        return sklearn_globals.reason(module, name)
    if module.startswith("scipy.sparse."):
        cls = _resolve_class(module, name)
        if cls is None or cls.__module__ != module:
            return None
        from scipy.sparse import sparray, spmatrix

        return "scipy.sparse matrix/array class" if issubclass(cls, (spmatrix, sparray)) else None
    if module.startswith("torch.nn.modules."):
        cls = _resolve_class(module, name)
        if cls is None or cls.__module__ != module:
            return None
        import torch

        layer = issubclass(cls, torch.nn.Module)
        return "torch.nn layer class (torch.save of a whole nn.Module)" if layer else None
    return None


@dataclass(frozen=True)
class Allowlist:
    """The default rules plus ``extra`` exact globals (``"module.name"`` strings)."""

    extra: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    def reason(self, module: str, name: str) -> str | None:
        """Why ``module.name`` may be imported (None: it may not)."""
        module, name = normalize(module, name)
        if (module, name) in EXACT:
            return EXACT[(module, name)]
        if (module, name) in self.extra:
            return "added by the caller (Allowlist.with_globals)"
        return rule_reason(module, name)

    def allows(self, module: str, name: str) -> bool:
        return self.reason(module, name) is not None

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

__all__ = ["DEFAULT", "EXACT", "Allowlist", "normalize", "rule_reason"]
