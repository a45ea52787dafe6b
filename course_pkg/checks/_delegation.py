"""Catch an answer that *is*, or *runs*, the course's own implementation of its exercise.

course_pkg ships real implementations of several things the notebooks ask students to write
(``preflight.parse_lock`` behind ``course-pkg doctor``, ``canary.verdict``, ...). Each
exercise registers those as *forbidden references*; one ``Watch`` is used by the self-checks
and, inside the grading sandbox, by the probe wrapper, so both give the same verdict:

- **identity**: the answer is a forbidden function, or wraps one (``functools.partial``, a
  bound method, ``staticmethod``/``classmethod``, ``__wrapped__``), or is (a subclass of) a
  forbidden class;
- **at run time**: while the answer runs, a profiler (cProfile, and a ``threading`` profile
  hook for threads started meanwhile) sees every Python-level call by code object and every
  C-level call by name. A ``def`` wrapper, a lambda, ``map(reference, ...)`` and a
  partial all end up calling the forbidden code, and are seen. The hook is scoped to the
  answer's calls (not the check's own oracle calls) and the previous hook is restored; an
  answer that removes or replaces the hook is reported as tampering.

This runs in the student's own process, so a determined student can defeat it (their kernel is
theirs); the grader adds a host-side static check of the submitted source, which they cannot
touch, and the similarity report covers copied code.
"""

from __future__ import annotations

import cProfile
import functools
import importlib
import inspect
import sys
import threading
from collections.abc import Iterable, Iterator
from types import CodeType, FrameType
from typing import Any

TAMPERED = "<the profile hook the check watches with was removed or replaced>"


def resolve(name: str) -> Any | None:
    """``"course_pkg.preflight.parse_lock"`` → that object (None if it does not exist)."""
    parts = name.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _wrapped(obj: Any, depth: int = 0) -> Iterator[Any]:
    """``obj`` and everything it wraps or is bound to (a few levels deep)."""
    yield obj
    if depth > 6:
        return
    inner: list[Any] = []
    if isinstance(obj, functools.partial):
        inner += [obj.func, *obj.args, *obj.keywords.values()]
    if isinstance(obj, staticmethod | classmethod):
        inner.append(obj.__func__)
    for attr in ("__func__", "__wrapped__"):
        try:
            value = getattr(obj, attr, None)
        except Exception:  # a hostile __getattr__ must not break the check
            value = None
        if value is not None and value is not obj:
            inner.append(value)
    for item in inner:
        if callable(item) or isinstance(item, staticmethod | classmethod):
            yield from _wrapped(item, depth + 1)


def _answers(answer: Any) -> Iterator[Any]:
    if isinstance(answer, tuple | list):
        for item in answer:
            yield from _answers(item)
    else:
        yield answer


def _source_functions(text: str) -> set[tuple[str, bytes]]:
    """(name, bytecode) of every function in a source text (a reference shipped as a string,
    like TorchServe's handler file): what ``exec(text)`` or a verbatim paste would define."""
    try:
        pending = [compile(text, "<reference>", "exec")]
    except SyntaxError:
        return set()
    found: set[tuple[str, bytes]] = set()
    while pending:
        code = pending.pop()
        found.add((code.co_name, code.co_code))
        pending += [c for c in code.co_consts if isinstance(c, CodeType)]
    return found


def _is_source_copy(candidate: Any, functions: set[tuple[str, bytes]]) -> bool:
    """A class at least two of whose methods (own or inherited) are the reference's."""
    if not isinstance(candidate, type):
        return False
    same = {
        name
        for klass in candidate.__mro__[:-1]
        for name, value in vars(klass).items()
        if isinstance(getattr(value, "__code__", None), CodeType)
        and (value.__code__.co_name, value.__code__.co_code) in functions
    }
    return len(same) >= 2


def identity_hits(answer: Any, forbidden: Iterable[str]) -> list[str]:
    """Forbidden names that ``answer`` is, wraps, or subclasses (or, for a reference shipped
    as source text, a class compiled from that text)."""
    hits = []
    for name in forbidden:
        target = resolve(name)
        if target is None:
            continue
        if isinstance(target, str):
            functions = _source_functions(target)
            if any(_is_source_copy(a, functions) for a in _answers(answer)):
                hits.append(name)
            continue
        code = getattr(target, "__code__", None)
        for candidate in (w for a in _answers(answer) for w in _wrapped(a)):
            same = candidate is target or (
                code is not None and getattr(candidate, "__code__", None) is code
            )
            if isinstance(target, type) and isinstance(candidate, type):
                same = same or issubclass(candidate, target)
            if same:
                hits.append(name)
                break
    return hits


def _c_label(function: Any) -> str:
    """How cProfile names a C function: ``<built-in method module.name>``."""
    module = getattr(function, "__module__", None)
    name = getattr(function, "__qualname__", getattr(function, "__name__", "?"))
    return f"<built-in method {module}.{name}>" if module else f"<built-in method {name}>"


class Watch:
    """Watch the answer's calls for forbidden code: ``guarded = watch.guard(answer)``, call
    ``guarded`` as the answer, then read ``watch.hits`` (names seen, tampering included).

    The watching is cProfile (C, ~4 µs per guarded call; a Python-level hook doubled the
    time of a 70,000-call check), enabled only while a guarded call runs, so the check's own
    oracle calls are never counted. Its statistics keep the code object of every Python
    function called and the name of every C function. Threads started meanwhile get a
    Python-level hook (``threading.setprofile``)."""

    def __init__(self, forbidden: Iterable[str]) -> None:
        self.forbidden = tuple(forbidden)
        self.codes: dict[CodeType, str] = {}
        self.c_labels: dict[str, str] = {}
        for name in self.forbidden:
            target = resolve(name)
            functions = [target]
            if isinstance(target, type):  # a class: every function defined on it
                functions = [v for k, v in vars(target).items() if not k.startswith("__")]
                functions += [target.__dict__.get("__init__"), target.__dict__.get("__call__")]
            for function in functions:
                for inner in _wrapped(function) if function is not None else ():
                    code = getattr(inner, "__code__", None)
                    if isinstance(code, CodeType):
                        self.codes[code] = name
                    elif inspect.isbuiltin(inner):
                        self.c_labels[_c_label(inner)] = name
        self._seen: dict[str, None] = {}
        self._depth = 0
        self._profiler = cProfile.Profile()
        self._saved: tuple[Any, Any] = (None, None)

    @property
    def active(self) -> bool:
        return bool(self.codes or self.c_labels)

    @property
    def hits(self) -> list[str]:
        for entry in self._profiler.getstats():
            code = entry.code
            name = self.codes.get(code) if isinstance(code, CodeType) else self.c_labels.get(code)
            if name is not None:
                self._seen[name] = None
        return list(self._seen)

    def _thread_hook(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            name = self.codes.get(frame.f_code)
            if name is not None:
                self._seen[name] = None
        elif event == "c_call" and self.c_labels:
            name = self.c_labels.get(_c_label(arg))
            if name is not None:
                self._seen[name] = None

    def __enter__(self) -> Watch:
        self._depth += 1
        if self._depth == 1:
            self._saved = (sys.getprofile(), threading.getprofile())
            threading.setprofile(self._thread_hook)
            self._profiler.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            current: Any = sys.getprofile()
            self._profiler.disable()
            if current is not self._profiler:  # the answer removed or replaced the hook
                self._seen[TAMPERED] = None
            threading.setprofile(self._saved[1])
            if callable(self._saved[0]):  # a Python-level profiler we displaced
                sys.setprofile(self._saved[0])

    def guard(self, answer: Any) -> Any:
        """``answer`` with every call watched: functions wrapped, classes subclassed with
        watched methods, tuples element by element; anything else is returned as it is."""
        if not self.active:
            return answer
        if isinstance(answer, tuple):
            return tuple(self.guard(item) for item in answer)
        if isinstance(answer, type):
            return self._guard_class(answer)
        if callable(answer):
            watch = self

            @functools.wraps(answer)
            def guarded(*args: Any, **kwargs: Any) -> Any:
                if watch._depth:  # already watched: a method calling another one
                    return answer(*args, **kwargs)
                watch.__enter__()
                try:
                    return answer(*args, **kwargs)
                finally:
                    watch.__exit__()

            return guarded
        return answer

    def _guard_class(self, cls: type) -> type:
        namespace: dict[str, Any] = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
        for name in dir(cls):
            if name.startswith("__") and name not in ("__init__", "__call__"):
                continue
            try:
                attr = inspect.getattr_static(cls, name)
            except AttributeError:
                continue
            if isinstance(attr, staticmethod | classmethod):
                namespace[name] = type(attr)(self.guard(attr.__func__))
            elif inspect.isfunction(attr):
                namespace[name] = self.guard(attr)
        try:
            return type(cls.__name__, (cls,), namespace)
        except TypeError:  # a final class or an odd metaclass: watch what we can, not more
            return cls


def message(hits: Iterable[str], *, identity: bool = False) -> str:
    """The line a student reads: which reference, and that the exercise is to write it."""
    names = [h for h in hits if h != TAMPERED]
    if not names:
        return "your answer removed or replaced the profile hook the check watches with"
    verb = "is" if identity else "calls"
    return f"your answer {verb} {' and '.join(names)} — the exercise is to write it"


def run_probe(
    probe: Any, namespace: dict[str, Any], answers: Iterable[str], forbidden: Iterable[str]
) -> dict[str, Any]:
    """Run a grader probe with the student's answers (globals named ``answers``) watched;
    ``{"value": ..., "delegated": [names]}``. The globals are restored afterwards."""
    forbidden = tuple(forbidden)
    watch = Watch(forbidden)
    delegated: list[str] = []
    saved: dict[str, Any] = {}
    for name in answers:
        if name in namespace:
            delegated += identity_hits(namespace[name], forbidden)
            saved[name] = namespace[name]
            namespace[name] = watch.guard(namespace[name])
    try:
        value = probe()
    finally:
        namespace.update(saved)
    return {"value": value, "delegated": sorted(set(delegated) | set(watch.hits))}
