"""Similarity of submissions' answer cells, to each other and to the reference solutions.

For instructors: it flags, it does not score. Runs on the host and executes nothing: each
answer cell (a code cell whose id is a solution cell with a ``### BEGIN SOLUTION`` region) is
tokenised with the standard ``tokenize`` module, names/strings/numbers are normalised (so
renaming variables does not hide a copy), the code the student notebook already provides is
removed as boilerplate, and k-grams of tokens are winnowed into fingerprints (Schleimer et
al., the MOSS algorithm). Two answers to the same exercise are compared by the share of the
smaller one's fingerprints that the other has too. An inverted index (fingerprint →
submissions) means only pairs that share something are compared: 300 submissions take
seconds, not 45,000 full comparisons.

Why not ``copydetect`` (0.5.0, 2024): it fits the algorithm, but compares files all-pairs
without an index and would add a dependency to the grading lock (and its image) for ~100
lines written here on ``tokenize``.
"""

from __future__ import annotations

import hashlib
import io
import keyword
import tokenize
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import nbformat

from course_pkg import paths

K = 5  # tokens per k-gram: below that, idioms (``for x in y :``) match everywhere
WINDOW = 4  # winnowing window: any shared run of K + WINDOW - 1 tokens is always found
MIN_FINGERPRINTS = 6  # cells shorter than this say nothing about copying
REFERENCE = "(reference solution)"


@dataclass(frozen=True)
class Match:
    a: str
    b: str  # another submission, or REFERENCE
    cell: str
    similarity: float  # shared fingerprints / fingerprints of the smaller answer
    shared: int
    source_a: str
    source_b: str


def _tokens(source: str) -> list[str]:
    out: list[str] = []
    lines = "\n".join(line for line in source.splitlines() if line.lstrip()[:1] not in "%!")
    try:
        for token in tokenize.generate_tokens(io.StringIO(lines).readline):
            kind, text = token.type, token.string
            if kind in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.ENCODING):
                continue
            if kind in (tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
                continue
            if kind == tokenize.NAME:
                out.append(text if keyword.iskeyword(text) else "N")
            elif kind == tokenize.STRING:
                out.append("S")
            elif kind == tokenize.NUMBER:
                out.append("0")
            else:
                out.append(text)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # a broken cell still has the tokens read so far
    return out


def fingerprints(source: str, boilerplate: frozenset[int] = frozenset()) -> frozenset[int]:
    """Winnowed hashes of the cell's normalised token k-grams, minus the boilerplate's."""
    tokens = _tokens(source)
    grams = [
        int.from_bytes(
            hashlib.blake2b(" ".join(tokens[i : i + K]).encode(), digest_size=8).digest()
        )
        for i in range(len(tokens) - K + 1)
    ]
    if len(grams) <= WINDOW:
        return frozenset(grams) - boilerplate
    chosen = {min(grams[i : i + WINDOW]) for i in range(len(grams) - WINDOW + 1)}
    return frozenset(chosen) - boilerplate


def _code_cells(path: Path) -> dict[str, str]:
    cells = nbformat.read(path, as_version=4).cells  # type: ignore[no-untyped-call]
    return {str(c.get("id")): c.source for c in cells if c.cell_type == "code" and c.get("id")}


def answer_cells(notebook: str) -> tuple[dict[str, str], dict[str, frozenset[int]]]:
    """(cell id → reference solution source, cell id → provided-code fingerprints)."""
    solutions = _code_cells(paths.SOLUTIONS / notebook)
    provided = _code_cells(paths.NOTEBOOKS / notebook)
    answers = {cid: src for cid, src in solutions.items() if "### BEGIN SOLUTION" in src}
    boiler = {cid: fingerprints(provided.get(cid, "")) for cid in answers}
    return answers, boiler


def compare(
    submissions: dict[str, Path], notebook: str, threshold: float = 0.8
) -> tuple[list[Match], list[str]]:
    """Pairs of answers (and answer vs reference) at or above ``threshold``, best first;
    and the submissions that could not be read (they are skipped, not fatal)."""
    references, boiler = answer_cells(notebook)
    prints: dict[str, dict[str, frozenset[int]]] = defaultdict(dict)  # cell → who → prints
    sources: dict[tuple[str, str], str] = {}
    unreadable = []
    for cid, source in references.items():
        prints[cid][REFERENCE] = fingerprints(source, boiler[cid])
        sources[(REFERENCE, cid)] = source
    for name, path in sorted(submissions.items()):
        try:
            cells = _code_cells(path)
        except Exception:  # not a notebook: the grader reports it; here it is skipped
            unreadable.append(name)
            continue
        for cid in references:
            if cid in cells:
                prints[cid][name] = fingerprints(cells[cid], boiler[cid])
                sources[(name, cid)] = cells[cid]
    matches = []
    for cid, who in prints.items():
        index: dict[int, list[str]] = defaultdict(list)
        for name, found in who.items():
            if len(found) >= MIN_FINGERPRINTS:
                for value in found:
                    index[value].append(name)
        shared: dict[tuple[str, str], int] = defaultdict(int)
        common = max(50, len(who) // 2)
        for names in index.values():
            if len(names) > common:  # in most answers: course idiom, not evidence
                continue
            for i, a in enumerate(names):
                for b in names[i + 1 :]:
                    shared[(a, b) if b == REFERENCE or (a != REFERENCE and a < b) else (b, a)] += 1
        for (a, b), count in shared.items():
            score = count / min(len(who[a]), len(who[b]))
            if score >= threshold:
                matches.append(
                    Match(a, b, cid, round(score, 3), count, sources[(a, cid)], sources[(b, cid)])
                )
    matches.sort(key=lambda m: (-m.similarity, m.a, m.b, m.cell))
    return matches, unreadable


def highest(matches: Iterable[Match]) -> dict[str, str]:
    """Per submission, its highest match as one gradebook cell: ``0.95 bob (cell 00-008)``."""
    best: dict[str, Match] = {}
    for match in matches:
        for who in (match.a, match.b):
            if who != REFERENCE and (who not in best or match.similarity > best[who].similarity):
                best[who] = match
    return {
        who: f"{m.similarity:.2f} {m.b if m.a == who else m.a} (cell {m.cell})"
        for who, m in best.items()
    }
