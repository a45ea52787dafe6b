"""The setup check: its parts, and the verdict on this (the project's own) environment."""

from __future__ import annotations

import socket

from course_pkg import paths
from course_pkg.preflight import (
    PASS,
    normalize_name,
    parse_lock,
    port_is_free,
    run_preflight,
    version_mismatches,
)


def test_parse_lock_reads_the_real_lock_with_torch_cpu_pin() -> None:
    pins = parse_lock(paths.LOCK_FILE.read_text())
    assert pins["torch"] == "2.13.0+cpu"
    assert "uvicorn" in pins and "scikit-learn" in pins
    assert len(pins) > 100


def test_parse_lock_ignores_options_comments_and_markers() -> None:
    text = '--find-links x\n# c==1\nA_b.C[x]==1.0 ; python_version>"3"\n    --hash=sha256:ab\n'
    assert parse_lock(text) == {"a-b-c": "1.0"}


def test_normalize_name() -> None:
    assert normalize_name("Typing__Extensions.x") == "typing-extensions-x"


def test_version_mismatches() -> None:
    assert version_mismatches({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "9"}) == [
        ("b", "2", "3")
    ]


def test_port_is_free_sees_a_listener() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not port_is_free(port)
    assert port_is_free(port)


def test_required_rows_pass_in_the_project_environment() -> None:
    report = run_preflight()
    assert report.ok, report.as_text()
    names = [row.check for row in report.rows]
    assert names[:4] == [
        "Python version",
        "packages vs lock",
        "kernel is the project venv",
        "datasets and checksums",
    ]
    assert "PASS: ready" in report.as_text()


def test_failing_row_shows_its_remedy_and_fails_the_verdict(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("course_pkg.datasets.verify_sums", lambda: ["churn.csv: changed"])
    report = run_preflight()
    row = next(r for r in report.rows if r.check == "datasets and checksums")
    assert row.status != PASS
    assert not report.ok
    assert "git checkout -- datasets/" in report.as_text()


def test_a_crashing_row_becomes_a_fail_not_an_exception(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from course_pkg import preflight

    def boom() -> preflight.Row:
        raise RuntimeError("broken")

    monkeypatch.setattr(preflight, "ROWS", (boom,))
    report = run_preflight()
    assert not report.ok and "broken" in report.rows[0].detail
