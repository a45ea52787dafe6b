"""Grader pieces that need no container: the signed frame, scoring, gradebook, local preview."""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader.gradebook import finished, write_gradebook, write_submission
from grader.grading import (
    QuestionScore,
    SubmissionResult,
    _score_question,
    grade,
    notebook_problem,
)
from grader.runner.protocol import FRAME, make_job, parse_frame
from grader.samples import write_samples
from grader.specs import ASSIGNMENTS, load_assignment
from grader.specs.model import Outcome, Question

SPEC = load_assignment("00")


def _frame(key: bytes, payload: dict[str, object]) -> bytes:
    text = json.dumps(payload)
    signature = hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
    return f"{FRAME}{signature} {text}\n".encode()


def test_only_frames_signed_with_the_run_key_count() -> None:
    job = make_job(SPEC, "/submission/notebook.ipynb")
    assert json.loads(job.payload)["key"] == job.key.decode()
    assert "expected" not in job.payload  # probes go in, expected values never do
    real = _frame(job.key, {"notebook": "ok", "probes": {}})
    forged = _frame(b"guessed-key", {"notebook": "ok", "probes": {"x": {"value": 1}}})
    junk = f"{FRAME}zz not-json\n".encode()
    assert parse_frame(forged + junk, job.key) is None
    assert parse_frame(b"noise\n" + real + forged, job.key) == {
        "notebook": "ok",
        "probes": {},
        "complete": False,
    }


def test_probe_frames_framed_before_a_kill_are_kept() -> None:
    job = make_job(SPEC, "/submission/notebook.ipynb")
    stream = (
        _frame(job.key, {"notebook": "ok", "cells": 3})
        + _frame(job.key, {"probe": "sha256_file", "result": {"value": ["a"]}})
        + _frame(b"guessed", {"probe": "parse_lock", "result": {"value": "forged"}})
    )
    cut = parse_frame(stream, job.key)
    assert cut == {
        "notebook": "ok",
        "cells": 3,
        "probes": {"sha256_file": {"value": ["a"]}},
        "complete": False,
    }
    whole = parse_frame(stream + _frame(job.key, {"notebook": "ok", "complete": True}), job.key)
    assert whole is not None and whole["complete"] and "sha256_file" in whole["probes"]


def test_expected_values_never_appear_in_probe_code() -> None:
    for assignment_id in ASSIGNMENTS:
        spec = load_assignment(assignment_id)
        for question in spec.questions:
            expected = json.dumps(question.expected())
            if len(expected) > 12:  # short values (True, [0, 1]) can appear by coincidence
                assert expected not in question.probe, (assignment_id, question.id)


def test_scoring_handles_errors_odd_values_and_crashing_compares() -> None:
    def broken_compare(got: object, expected: object) -> Outcome:
        raise ZeroDivisionError

    question = Question("q", 3, "Q", "def probe(): return 1", lambda: 1, hint="try harder")
    assert _score_question(question, {"value": 1}).score == 3
    assert "hint: try harder" in _score_question(question, {"value": 2}).feedback
    assert "not done yet" in _score_question(question, {"error": "NotImplementedError: "}).feedback
    assert "did not run" in _score_question(question, None).feedback
    odd = Question("q", 3, "Q", "", lambda: 1, compare=broken_compare)
    assert _score_question(odd, {"value": [1]}).score == 0


def test_notebook_problems_are_named_without_quoting_the_file(tmp_path: Path) -> None:
    secret = "root:x:0:0:SECRET-LINE"
    (tmp_path / "a.ipynb").write_text(secret + "\n")
    (tmp_path / "b.ipynb").write_bytes(b"\xff\xfe" + secret.encode())
    (tmp_path / "c.ipynb").write_text('{"cells": []}')
    surrogate = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    text = nbformat.writes(surrogate).replace("x = 1", "x = '\\ud800'")
    (tmp_path / "d.ipynb").write_text(text)
    reasons = {p.name: notebook_problem(p) for p in sorted(tmp_path.iterdir())}
    assert all(reason is not None and "SECRET" not in reason for reason in reasons.values())
    assert "not JSON (line 1" in str(reasons["a.ipynb"])
    assert "not UTF-8" in str(reasons["b.ipynb"])
    assert "not a Jupyter notebook" in str(reasons["c.ipynb"])
    assert "lone surrogate" in str(reasons["d.ipynb"]) and "cell 1" in str(reasons["d.ipynb"])


def test_probe_statuses_are_reported_per_question() -> None:
    question = Question("q", 3, "Q", "def probe(): return 1", lambda: 1)
    hung = _score_question(question, {"status": "probe-timeout", "error": "stopped at 20 s"})
    assert (hung.status, hung.score) == ("probe-timeout", 0)
    assert "KeyboardInterrupt" not in hung.feedback and "time limit" in hung.feedback
    big = _score_question(question, {"status": "probe-output-too-large", "error": "9 chars"})
    assert big.status == "probe-output-too-large" and "too large" in big.feedback
    assert _score_question(question, {"status": "memory", "error": "x"}).status == "memory"
    raised = _score_question(question, {"error": "ValueError: bad"})
    assert raised.status == "error" and raised.feedback == "your code raised ValueError: bad"


def _result(name: str, score: float, status: str = "ok") -> SubmissionResult:
    questions = [QuestionScore(q.id, q.title, 0.0, q.points, "x") for q in SPEC.questions]
    questions[0].score = score
    return SubmissionResult(
        name, "00", status, score, SPEC.total_points, 1.0, "docker", "", questions
    )


def test_gradebook_rows_results_and_resume(tmp_path: Path) -> None:
    write_submission(tmp_path, _result("alice", 2), SPEC)
    write_submission(tmp_path, _result("bob", 0, "timeout"), SPEC)
    book = write_gradebook(tmp_path, SPEC)
    rows = list(csv.DictReader(book.read_text().splitlines()))
    assert [r["submission"] for r in rows] == ["alice", "bob"]
    assert rows[0]["name"] == "alice"
    assert rows[0]["sha256_file"] == "2" and rows[1]["status"] == "timeout"
    results = json.loads((tmp_path / "alice" / "results.json").read_text())
    assert results["score"] == 2 and len(results["tests"]) == len(SPEC.questions)
    assert finished(tmp_path, "alice") and not finished(tmp_path, "carol")
    assert not list(tmp_path.rglob(".*"))  # no temp files left behind


def test_unknown_assignment_and_missing_folder_are_usage_errors(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "grader.cli", "grade"]
    unknown = subprocess.run(
        [*base, str(tmp_path), "--assignment", "99", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert unknown.returncode == 2 and "available: 00, 01, 02" in unknown.stderr
    missing = subprocess.run(
        [
            *base,
            str(tmp_path / "nope"),
            "--assignment",
            "00",
            "--out",
            str(tmp_path),
            "--backend",
            "local",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2 and "not a directory" in missing.stderr


@pytest.mark.slow
def test_local_preview_grades_and_says_it_is_unsandboxed(tmp_path: Path) -> None:
    write_samples("00_setup_check.ipynb", tmp_path, hostile=False)
    result = grade(tmp_path / "full.ipynb", SPEC, backend="local")
    assert (result.status, result.score) == ("ok", SPEC.total_points)
    assert "UNSANDBOXED" in result.detail
    partial = grade(tmp_path / "partial.ipynb", SPEC, backend="local")
    assert 0 < partial.score < SPEC.total_points


def test_the_runner_skips_unchanged_demo_cells_and_runs_edited_ones(tmp_path: Path) -> None:
    """The real runner and kernel: a cell whose source is a listed demo cell's is not run; the
    same cell edited by the student (another digest) runs, and so does everything else."""
    from grader.runner import inside
    from grader.runner.inside import source_digest

    demo, edited = "demo_ran = True", "demo_ran = True  # mine"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(s) for s in ("x = 1", demo, "y = 2")]
    notebook.cells.insert(2, nbformat.v4.new_code_cell(edited.replace("demo_ran", "edit_ran")))
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook, path)
    key = "k" * 64
    probe = "def probe():\n    return [x, y, 'demo_ran' in globals(), 'edit_ran' in globals()]"
    job = {
        "notebook": str(path),
        "work_dir": str(tmp_path),
        "probes": [{"id": "q", "code": probe}],
        "skip_sources": [source_digest(demo), source_digest("edit_ran = True")],
        "cell_timeout": 60,
        "key": key,
    }
    done = subprocess.run(
        [sys.executable, inside.__file__],
        input=(json.dumps(job) + "\n").encode(),
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    result = parse_frame(done.stdout, key.encode())
    assert result is not None, done.stderr[-2000:]
    assert (result["cells"], result["skipped_cells"]) == (3, 1)
    assert result["probes"]["q"]["value"] == [1, 2, False, True]


def test_every_specs_demo_cells_are_code_cells_of_its_student_notebook() -> None:
    """A demo cell the student version does not hold would skip nothing (or, renamed in the
    solution, raise): each listed id resolves and its source is in notebooks/."""
    from course_pkg import paths
    from grader.runner.inside import source_digest
    from grader.runner.protocol import demo_cell_digests

    listed = 0
    for assignment_id in ASSIGNMENTS:
        spec = load_assignment(assignment_id)
        digests = demo_cell_digests(spec.notebook, spec.demo_cells)
        student = nbformat.read(paths.NOTEBOOKS / spec.notebook, as_version=4)
        sources = {source_digest(c.source) for c in student.cells if c.cell_type == "code"}
        assert set(digests) <= sources, spec.id
        listed += len(digests)
    assert listed >= 2  # notebook 02's scanner comparison at least


def _names(source: str) -> tuple[set[str], set[str]]:
    """(names a cell binds, names it reads), shell (!) and magic (%) lines left out."""
    import ast

    code = "\n".join(
        line for line in source.splitlines() if not line.lstrip().startswith(("!", "%"))
    )
    bound, read = set(), set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, ast.Store) else read).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return bound, read


def test_no_cell_after_a_demo_cell_reads_what_only_the_demo_cell_defines() -> None:
    """Skipping a demo cell must change nothing the probes see: a name it binds that a later
    cell reads, and no other cell binds, would be a NameError in every graded run."""
    from course_pkg import paths

    for assignment_id in ASSIGNMENTS:
        spec = load_assignment(assignment_id)
        cells = [
            c
            for c in nbformat.read(paths.SOLUTIONS / spec.notebook, 4).cells
            if c.cell_type == "code"
        ]
        demo = {c.id for c in cells} & set(spec.demo_cells)
        bound_elsewhere = set().union(*(_names(c.source)[0] for c in cells if c.id not in demo))
        for index, cell in enumerate(cells):
            if cell.id not in demo:
                continue
            only_here = _names(cell.source)[0] - bound_elsewhere
            for later in cells[index + 1 :]:
                if later.id not in demo:
                    needed = only_here & _names(later.source)[1]
                    assert not needed, f"{spec.id}: {later.id} reads {needed} from demo {cell.id}"
