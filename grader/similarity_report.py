"""Write the similarity report: ``similarity.csv`` (one row per flagged pair) and
``similarity.html`` (each pair's cells side by side). Student text is data: it is escaped by
grader.render (``csv_cell`` for CSV, ``html_text`` for HTML), the grader's one rendering boundary.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from grader.gradebook import atomic_write
from grader.render import csv_cell, html_text
from grader.similarity import REFERENCE, Match

CSV_FILE = "similarity.csv"
HTML_FILE = "similarity.html"


SOURCE_CAP = 20_000  # characters of one answer cell shown in the HTML report


def write_report(out: Path, assignment: str, matches: list[Match], threshold: float) -> list[Path]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["submission", "other", "cell", "similarity", "shared_fingerprints"])
    for m in matches:
        writer.writerow([csv_cell(m.a), csv_cell(m.b), csv_cell(m.cell), m.similarity, m.shared])
    atomic_write(out / CSV_FILE, buffer.getvalue())
    atomic_write(out / HTML_FILE, _html(assignment, matches, threshold))
    return [out / CSV_FILE, out / HTML_FILE]


def _html(assignment: str, matches: list[Match], threshold: float) -> str:
    e = html_text
    rows = []
    for m in matches:
        other = "the reference solution" if m.b == REFERENCE else e(m.b)
        rows.append(
            f"<h2>{e(m.a)} ↔ {other} · cell {e(m.cell)} · {m.similarity:.0%} "
            f"({m.shared} shared fingerprints)</h2>\n<table><tr>"
            f"<td><pre>{e(m.source_a, SOURCE_CAP)}</pre></td>"
            f"<td><pre>{e(m.source_b, SOURCE_CAP)}</pre></td></tr></table>"
        )
    body = "\n".join(rows) or "<p>No pair reaches the threshold.</p>"
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        f"<title>Similarity · assignment {e(assignment)}</title><style>"
        "table{width:100%;table-layout:fixed;border-collapse:collapse}"
        "td{vertical-align:top;border:1px solid #ccc;width:50%}pre{white-space:pre-wrap}"
        "</style></head><body>"
        f"<h1>Similarity · assignment {e(assignment)}</h1>"
        f"<p>{len(matches)} pairs of answer cells at or above {threshold:.0%} (shared winnowed "
        "token fingerprints / those of the smaller answer; names, strings and numbers "
        "normalised, provided code removed). A flag for a person to read, not a verdict: "
        "short, standard answers can match without copying.</p>\n"
        f"{body}\n</body></html>\n"
    )
