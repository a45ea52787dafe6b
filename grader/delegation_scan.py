"""Host-side, static: does a submission's answer hand in course_pkg's own implementation?

The in-sandbox watch (course_pkg.checks._delegation) runs in the student's kernel, which the
student controls. This check reads the submitted source on the host, where nothing they run
can reach: for each question, the code cells that define one of its answer names (``def
parse_lock``, ``parse_lock = ...``, ``from course_pkg.preflight import parse_lock``) are
parsed, names are resolved through every import in the notebook (aliases included), and a
reference that resolves to a forbidden object is reported. Nothing is executed; imports of
course_pkg happen on the host, from the grader's own installation.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from typing import Any

from course_pkg.checks._delegation import resolve

_MAGIC = re.compile(r"^\s*[%!].*$", re.M)


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(_MAGIC.sub("", source))
    except (SyntaxError, ValueError):
        return None


def _aliases(trees: Iterable[ast.Module]) -> dict[str, str]:
    """Local name → dotted origin, from every import in the notebook."""
    names: dict[str, str] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        names[alias.asname] = alias.name
                    else:
                        root = alias.name.split(".")[0]
                        names[root] = root
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    if alias.name != "*":
                        names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _defines(tree: ast.Module, answers: set[str]) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name in answers:
                return True
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            if node.id in answers:
                return True
        elif isinstance(node, ast.Import | ast.ImportFrom) and any(
            (a.asname or a.name.split(".")[0]) in answers for a in node.names
        ):
            return True
    return False


def _dotted(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _references(tree: ast.Module, aliases: dict[str, str]) -> Iterator[str]:
    """Dotted origins of the names and attribute chains a cell uses or imports."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield from (f"{node.module}.{a.name}" for a in node.names if a.name != "*")
        elif isinstance(node, ast.Attribute | ast.Name):
            dotted = _dotted(node)
            if dotted is None:
                continue
            head, _, rest = dotted.partition(".")
            if head in aliases:
                yield f"{aliases[head]}.{rest}" if rest else aliases[head]
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.startswith("course_pkg.")  # importlib.import_module("course_pkg.…")
        ):
            yield node.value


def _same(origin: str, targets: dict[str, Any]) -> list[str]:
    if not origin.startswith("course_pkg"):
        return []
    found = [name for name in targets if origin == name]
    if found:
        return found
    obj = resolve(origin)
    return [name for name, target in targets.items() if obj is not None and obj is target]


def referenced(cells: Iterable[str], forbidden: Iterable[str]) -> list[str]:
    """The forbidden names any of ``cells`` imports or uses (the student-notebook test)."""
    trees = [t for t in (_parse(c) for c in cells) if t is not None]
    aliases = _aliases(trees)
    targets = {name: resolve(name) for name in forbidden}
    hits: dict[str, None] = {}
    for tree in trees:
        for origin in _references(tree, aliases):
            hits.update(dict.fromkeys(_same(origin, targets)))
    return list(hits)


def scan(
    cells: Iterable[str], questions: Iterable[tuple[str, tuple[str, ...], tuple[str, ...]]]
) -> dict[str, list[str]]:
    """``{question id: [forbidden names its answer cells reference]}`` for (id, answer names,
    forbidden names) triples; questions with nothing found are left out."""
    trees = [t for t in (_parse(c) for c in cells) if t is not None]
    aliases = _aliases(trees)
    found: dict[str, list[str]] = {}
    for qid, answers, forbidden in questions:
        if not answers or not forbidden:
            continue
        targets = {name: resolve(name) for name in forbidden}
        hits: dict[str, None] = {}
        for tree in trees:
            if _defines(tree, set(answers)):
                for origin in _references(tree, aliases):
                    hits.update(dict.fromkeys(_same(origin, targets)))
        if hits:
            found[qid] = list(hits)
    return found
