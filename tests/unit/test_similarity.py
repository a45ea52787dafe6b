"""The similarity report flags renamed copies, not independent answers, and escapes what
students wrote. Nothing a submission contains is executed."""

from __future__ import annotations

import csv
from pathlib import Path

import nbformat
import pytest

from course_pkg import paths
from grader.cli import main
from grader.similarity import REFERENCE, answer_cells, compare, fingerprints

NOTEBOOK = "00_setup_check.ipynb"
PARSE_LOCK_CELL = "00-008"


def _submission(folder: Path, name: str, answer: str) -> Path:
    notebook = nbformat.read(paths.NOTEBOOKS / NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.get("id") == PARSE_LOCK_CELL:
            cell.source = answer
    path = folder / f"{name}.ipynb"
    nbformat.write(notebook, path)
    return path


REFERENCE_ANSWER = answer_cells(NOTEBOOK)[0][PARSE_LOCK_CELL]
RENAMED = (
    REFERENCE_ANSWER.replace("pins", "found").replace("match", "m").replace("line", "row")
    + "\n# my own work, honest\n"
)
INDEPENDENT = """def parse_lock(text):
    out = {}
    for raw in text.split("\\n"):
        raw = raw.split(";")[0].split("\\\\")[0].strip()
        if "==" not in raw or raw.startswith(("#", "-")):
            continue
        name, version = raw.split("==", 1)
        out[name.split("[")[0].replace("_", "-").lower()] = version.strip()
    return out
"""


def test_a_renamed_copy_is_flagged_and_an_independent_answer_is_not(tmp_path: Path) -> None:
    subs = {
        "alice": _submission(tmp_path, "alice", RENAMED),
        "bob": _submission(tmp_path, "bob", RENAMED.replace("found", "result")),
        "carol": _submission(tmp_path, "carol", INDEPENDENT),
    }
    matches, unreadable = compare(subs, NOTEBOOK)
    pairs = {(m.a, m.b) for m in matches if m.cell == PARSE_LOCK_CELL}
    assert ("alice", "bob") in pairs
    assert ("alice", REFERENCE) in pairs and ("bob", REFERENCE) in pairs
    assert not any("carol" in pair for pair in pairs)
    assert unreadable == []


def test_the_provided_code_is_not_evidence() -> None:
    provided = next(
        c.source
        for c in nbformat.read(paths.NOTEBOOKS / NOTEBOOK, as_version=4).cells
        if c.get("id") == PARSE_LOCK_CELL
    )
    boilerplate = answer_cells(NOTEBOOK)[1][PARSE_LOCK_CELL]
    assert boilerplate and not fingerprints(provided, boilerplate)


def test_cli_writes_escaped_html_and_guarded_csv_and_skips_bad_files(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    subs.mkdir()
    hostile = RENAMED + "\n'<script>alert(1)</script>'\n"
    _submission(subs, "=cmd|calc", hostile)
    _submission(subs, "dave", RENAMED)
    (subs / "broken.ipynb").write_text("{not json")
    out = tmp_path / "report"
    assert main(["similarity", str(subs), "--assignment", "00", "--out", str(out)]) == 0
    page = (out / "similarity.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    rows = list(csv.DictReader((out / "similarity.csv").read_text().splitlines()))
    # submissions are named by their intake id, never by the raw file name
    assert "_cmd_calc" in {r["submission"] for r in rows} | {r["other"] for r in rows}
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())
    assert (
        main(["similarity", str(subs), "--assignment", "00", "--out", str(out), "--threshold", "3"])
        == 2
    )


def test_a_results_folder_recomputes_the_report_and_the_gradebook_column(tmp_path: Path) -> None:
    from grader.gradebook import RUN_FILE, record_run

    subs = tmp_path / "subs"
    subs.mkdir()
    _submission(subs, "alice", RENAMED)
    _submission(subs, "bob", INDEPENDENT)
    results = tmp_path / "results"
    results.mkdir()
    record_run(results, "00", subs)  # what grader grade writes before the first submission
    assert main(["similarity", str(results), "--threshold", "0.9"]) == 0
    rows = list(csv.DictReader((results / "similarity.csv").read_text().splitlines()))
    assert {(r["submission"], r["other"]) for r in rows} >= {("alice", REFERENCE)}
    header = (results / "gradebook.csv").read_text().splitlines()[0].split(",")
    assert header[-1] == "similarity"
    # what the folder says wins; a contradiction, a missing folder, or neither mode: exit 2
    assert main(["similarity", str(results), "--assignment", "01"]) == 2
    assert main(["similarity", str(subs)]) == 2  # not a results folder, no --assignment/--out
    (results / RUN_FILE).write_text("{broken")
    assert main(["similarity", str(results)]) == 2
    record_run(results, "00", tmp_path / "gone")
    assert main(["similarity", str(results)]) == 2


def test_a_hostile_folder_name_is_escaped_in_the_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["similarity", str(tmp_path / "x\x1b[2J\x07")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and "is not a directory" in err
