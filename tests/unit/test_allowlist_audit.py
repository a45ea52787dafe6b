"""No allowlisted callable can reach code execution, and the audit would notice if one did."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterator

import pytest

from course_pkg.artifacts import DEFAULT_ALLOWLIST, UnsafeArtifactError, scan_bytes
from course_pkg.artifacts import allowlist as allowlist_module
from course_pkg.artifacts.gadget_audit import audit, default_pairs


@pytest.fixture(scope="module")
def granted() -> dict[tuple[str, str], str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # importing every sklearn/torch.nn module warns a bit
        return default_pairs()


def test_every_allowlisted_global_has_a_reason_and_none_reaches_code_execution(
    granted: dict[tuple[str, str], str],
) -> None:
    assert len(granted) > 500  # the derived scikit-learn part, not a short hand list
    assert all(granted.values())
    assert audit(granted) == []


@pytest.mark.parametrize(
    "dotted",
    [
        "builtins.eval",
        "builtins.exec",
        "builtins.getattr",
        "builtins.__import__",
        "importlib.import_module",
        "pydoc.locate",
        "pkgutil.resolve_name",
        "os.system",
        "subprocess.Popen",
        "pty.spawn",
        "pickle.loads",
        "marshal.loads",
        "torch.load",
        "numpy.load",
        "pip.main",
        "operator.attrgetter",
        "functools.partial",
    ],
)
def test_the_audit_fails_when_a_gadget_is_allowlisted(
    dotted: str, granted: dict[tuple[str, str], str]
) -> None:
    module, _, name = dotted.rpartition(".")
    problems = audit([*granted, (module, name)])
    assert len(problems) == 1 and problems[0].startswith(dotted), problems


def test_the_audit_fails_if_a_gadget_lands_in_the_exact_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(allowlist_module.EXACT, ("pydoc", "locate"), "a mistake")
    assert DEFAULT_ALLOWLIST.allows("pydoc", "locate")
    assert any("pydoc.locate" in line for line in audit(allowlist_module.EXACT))


def _runs_code(source: str) -> None:
    exec(source)


class _Loader:
    def __setstate__(self, state: str) -> None:
        eval(state)


def test_the_audit_reads_python_code_of_functions_and_pickle_reachable_methods() -> None:
    here = __name__
    problems = audit([(here, "_runs_code"), (here, "_Loader")])
    assert any("_runs_code references exec" in line for line in problems), problems
    assert any("_Loader.__setstate__ references eval" in line for line in problems), problems


def _function_defaults() -> Iterator[tuple[str, str, str]]:
    from sklearn.utils import all_estimators

    for name, cls in all_estimators():
        for parameter in inspect.signature(cls).parameters.values():
            default = parameter.default
            if callable(default) and not isinstance(default, type):
                yield f"{name}({parameter.name}=)", default.__module__, default.__name__


def test_every_function_an_estimator_stores_by_default_is_allowlisted() -> None:
    """Functions are granted from a short exact list; this re-derives what the installed
    scikit-learn needs (e.g. SelectKBest's f_classif) so the list cannot go stale."""
    defaults = list(_function_defaults())
    assert defaults  # SelectKBest(score_func=f_classif) at least
    missing = [
        where for where, module, name in defaults if not DEFAULT_ALLOWLIST.allows(module, name)
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("sklearn.utils.validation", "check_array"),  # a function, not in the exact list
        ("sklearn.pipeline", "Bunch"),  # a re-export: Bunch is defined in sklearn.utils._bunch
        ("sklearn.utils.parallel", "_FuncWrapper"),  # a helper whose __call__ runs a callable
        ("sklearn.metrics._scorer", "_Scorer"),  # dispatches methods by name
        ("sklearn.utils._testing", "TempMemmap"),  # test helpers are not model code
        ("sklearn", "base.BaseEstimator"),  # dotted walks are never resolved
    ],
)
def test_the_derived_rules_grant_exact_definitions_only(module: str, name: str) -> None:
    assert not DEFAULT_ALLOWLIST.allows(module, name)
    if "." not in name:
        data = b"\x80\x04\x8c" + bytes([len(module)]) + module.encode()
        data += b"\x8c" + bytes([len(name)]) + name.encode() + b"\x93."
        with pytest.raises(UnsafeArtifactError, match="not on the allowlist"):
            scan_bytes(data)
    assert DEFAULT_ALLOWLIST.allows("sklearn.utils._bunch", "Bunch")
    assert DEFAULT_ALLOWLIST.reason("sklearn.tree._tree", "Tree") == (
        "Cython extension type a fitted model is made of"
    )
