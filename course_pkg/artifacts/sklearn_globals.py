"""The exact scikit-learn globals a fitted model may import, derived from the installed package.

Hand-listing scikit-learn's classes goes stale with every release (a new Cython loss, a renamed
optimizer) and the safe loader then refuses common models. Instead, for the one module a pickle
names, we import that module (installed scikit-learn code, never a file's bytes) and grant
exactly the names it *defines*, each with a reason:

- classes defined in that module (``cls.__module__ == module``): estimators, kernels, Cython
  extension types (trees, losses, KD/Ball trees, SGD loss functions), fitted-model helpers
  (``_CFNode``, ``AdamOptimizer``, ``Bunch``). Reconstructing one is ``cls.__new__`` plus its
  ``__setstate__``; :mod:`course_pkg.artifacts.gadget_audit` checks none of their
  pickle-reachable methods can run code;
- Cython's generated ``__pyx_unpickle_<Type>`` reconstructors in scikit-learn's compiled
  modules: they check the type's layout checksum, call ``<Type>.__new__(cls)`` (``cls`` must
  be a subclass, itself an allowlisted global) and fill its C fields from plain data;
- ``newObj`` in compiled modules (``obj.__new__(obj)``, what ``BinaryTree`` and
  ``DistanceMetric`` reduce to);
- a short exact list of *functions* fitted models keep as attributes (``FUNCTIONS``); a test
  (``tests/unit/test_allowlist_audit.py``) re-derives the function defaults of every estimator
  in the installed scikit-learn and fails if one is missing here.

Never granted: functions in general (``sklearn.utils.validation.check_array`` …), re-exports
(``sklearn.base.copy``), dotted attribute walks, and anything under test or vendored modules.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import pkgutil
import re
from collections.abc import Mapping
from functools import lru_cache

_MODULE = re.compile(r"^sklearn(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Parts of the package that are not model code: tests, vendored code, build helpers.
_EXCLUDED_PARTS = frozenset({"tests", "externals", "_build_utils", "__check_build", "conftest"})
_EXCLUDED_MODULES = frozenset({"sklearn.utils._testing", "sklearn.utils._mocking"})

FUNCTIONS: Mapping[tuple[str, str], str] = {
    **{
        ("sklearn.feature_selection._univariate_selection", name): (
            "univariate score function a selector stores as score_func (statistics on arrays)"
        )
        for name in ("f_classif", "f_regression", "f_oneway", "chi2", "r_regression")
    },
    **{
        ("sklearn.feature_selection._mutual_info", name): (
            "mutual-information score function a selector stores as score_func"
        )
        for name in ("mutual_info_classif", "mutual_info_regression")
    },
    **{
        ("sklearn.cluster._kmeans", name): "the k-means step BisectingKMeans stores (arrays only)"
        for name in ("_kmeans_single_lloyd", "_kmeans_single_elkan")
    },
}


def _is_model_module(module: str) -> bool:
    if not _MODULE.match(module) or module in _EXCLUDED_MODULES:
        return False
    return not any(part in _EXCLUDED_PARTS for part in module.split("."))


def _is_compiled(module: object) -> bool:
    origin = getattr(module, "__file__", None) or ""
    return origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


@lru_cache(maxsize=512)
def module_globals(module: str) -> Mapping[str, str]:
    """{name: reason} of everything ``module`` (a scikit-learn module) contributes, or {}."""
    if not _is_model_module(module):
        return {}
    try:
        imported = importlib.import_module(module)
    except Exception:  # not installed / not importable here: nothing is granted
        return {}
    if imported.__name__ != module:
        return {}
    compiled = _is_compiled(imported)
    granted: dict[str, str] = {}
    for name, obj in vars(imported).items():
        if not _NAME.match(name):
            continue
        if isinstance(obj, type) and obj.__module__ == module:
            why = _class_reason(obj, compiled)
            if why is not None:
                granted[name] = why
        elif compiled and name.startswith("__pyx_unpickle_"):
            granted[name] = (
                f"Cython reconstructor of {name.removeprefix('__pyx_unpickle_')}: checks the "
                "layout checksum, calls Type.__new__ on an allowlisted subclass, sets C fields"
            )
        elif compiled and name == "newObj":
            granted[name] = "Cython helper obj.__new__(obj) that BinaryTree/DistanceMetric use"
    for (fn_module, fn_name), reason in FUNCTIONS.items():
        if fn_module == module and callable(getattr(imported, fn_name, None)):
            granted[fn_name] = reason
    return granted


def _class_reason(cls: type, compiled: bool) -> str | None:
    """Estimators, compiled types and data-holding helpers; not callable helper objects.

    A pickle can call any instance it builds (REDUCE), so a plain helper class whose
    ``__call__`` runs stored callables or looks methods up by name (scorers, function
    wrappers) would hand it a dispatcher; those are not granted. Kernels and losses are the
    exceptions fitted models need: their ``__call__`` only computes on arrays.
    """
    from sklearn._loss.loss import BaseLoss
    from sklearn.base import BaseEstimator
    from sklearn.gaussian_process.kernels import Kernel

    if issubclass(cls, BaseEstimator):
        return "scikit-learn estimator class"
    if compiled:
        return "Cython extension type a fitted model is made of"
    if issubclass(cls, Kernel):
        return "Gaussian-process kernel (its __call__ computes a kernel matrix)"
    if issubclass(cls, BaseLoss):
        return "loss of a fitted gradient-boosting/GLM model (its __call__ averages a loss)"
    if any("__call__" in vars(k) for k in cls.__mro__ if k.__module__ != "builtins"):
        return None
    return "scikit-learn helper class stored inside fitted models (no __call__)"


def reason(module: str, name: str) -> str | None:
    """Why ``module.name`` may be imported by a model pickle, or None if it may not."""
    return module_globals(module).get(name)


def all_globals() -> dict[tuple[str, str], str]:
    """Every (module, name) granted in the installed scikit-learn (imports all of it: slow,
    for audits and documentation, never on the loading path)."""
    import sklearn

    pairs: dict[tuple[str, str], str] = {}
    modules = ["sklearn"] + [
        info.name for info in pkgutil.walk_packages(sklearn.__path__, "sklearn.", onerror=_skip)
    ]
    for module in modules:
        if not _is_model_module(module):
            continue
        for name, why in module_globals(module).items():
            pairs[(module, name)] = why
    return pairs


def _skip(_name: str) -> None:
    """walk_packages' onerror: a subpackage that fails to import contributes nothing."""


__all__ = ["FUNCTIONS", "all_globals", "module_globals", "reason"]
