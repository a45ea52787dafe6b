"""course_pkg.check: passes right answers, explains wrong ones, and never raises."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from course_pkg import check, preflight
from course_pkg.checks import list_checks


def reference_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


REFERENCE = {
    "00.sha256_file": reference_sha256,
    "00.parse_lock": preflight.parse_lock,
    "00.port_is_free": preflight.port_is_free,
    "00.version_mismatches": preflight.version_mismatches,
}


def test_every_registered_check_has_a_reference_answer_here() -> None:
    assert set(list_checks()) == set(REFERENCE)


@pytest.mark.parametrize("exercise", sorted(REFERENCE))
def test_reference_answers_pass(exercise: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = check(exercise, REFERENCE[exercise])
    assert result.passed, result.message
    assert capsys.readouterr().out.startswith(f"✅ {exercise}:")


def _unfinished(*args: object) -> object:
    raise NotImplementedError


@pytest.mark.parametrize("exercise", sorted(REFERENCE))
def test_unfinished_exercise_is_reported_not_raised(exercise: str) -> None:
    result = check(exercise, _unfinished, quiet=True)
    assert not result
    assert "not done yet" in result.message


def test_crash_in_student_code_is_reported_with_its_type() -> None:
    def crashes(path: Path) -> str:
        return {}["missing"]  # type: ignore[no-any-return]

    result = check("00.sha256_file", crashes, quiet=True)
    assert not result.passed
    assert "KeyError" in result.message and "crashes" in result.message


def test_wrong_answers_get_specific_hints() -> None:
    digest_bytes = check(
        "00.sha256_file", lambda p: hashlib.sha256(b"").hexdigest()[:10], quiet=True
    )
    assert "hexdigest" in digest_bytes.message

    not_callable = check("00.parse_lock", {"numpy": "2.4.6"}, quiet=True)
    assert "pass the function itself" in not_callable.message

    loose = check("00.version_mismatches", lambda locked, installed: [], quiet=True)
    assert "not installed is a mismatch" in loose.message

    always_free = check("00.port_is_free", lambda port, host="127.0.0.1": True, quiet=True)
    assert "has a listener" in always_free.message


def test_parse_lock_that_keeps_raw_names_is_told_to_normalise() -> None:
    def raw_names(text: str) -> dict[str, str]:
        pins = preflight.parse_lock(text)
        return {
            ("Typing_Extensions" if k == "typing-extensions" else k): v for k, v in pins.items()
        }

    result = check("00.parse_lock", raw_names, quiet=True)
    assert not result.passed
    assert "normalised" in result.message or "not packages" in result.message


def test_unknown_exercise_lists_known_ids() -> None:
    result = check("00.nope", print, quiet=True)
    assert not result.passed
    assert "00.sha256_file" in result.message


def test_check_survives_base_exceptions_from_student_code() -> None:
    def exits(path: Path) -> str:
        raise SystemExit(3)

    result = check("00.sha256_file", exits, quiet=True)
    assert not result.passed and "SystemExit" in result.message


def test_result_is_shown_once_in_jupyter(capsys: pytest.CaptureFixture[str]) -> None:
    result = check("00.parse_lock", preflight.parse_lock)
    result._ipython_display_()
    assert capsys.readouterr().out.count("00.parse_lock") == 1
