"""Notebook 06's by-hand check reads the engine and the registry and names what is missing.

The reference answer (image, container, push made with the docker CLI) passes in
tests/unit/test_checks.py; here each artefact is wrong in turn, against the real engine.
"""

from __future__ import annotations

from typing import Any

from course_pkg import check


def _message(answer: Any) -> str:
    result = check("06.by_hand", answer, quiet=True)
    assert not result.passed
    return result.message


def test_a_missing_image_is_named_with_the_command_that_makes_it(
    by_hand_artefacts: dict[str, str],
) -> None:
    message = _message({**by_hand_artefacts, "image": "nb06-never-built:dev"})
    assert "no image 'nb06-never-built:dev'" in message and "docker build" in message


def test_a_missing_container_is_named(by_hand_artefacts: dict[str, str]) -> None:
    message = _message({**by_hand_artefacts, "container": "nb06-never-run"})
    assert "no container named 'nb06-never-run'" in message and "docker run" in message


def test_a_tag_never_pushed_is_reported(by_hand_artefacts: dict[str, str]) -> None:
    registry = by_hand_artefacts["pushed"].split("/")[0]
    message = _message({**by_hand_artefacts, "pushed": f"{registry}/nb06-by-hand:9.9.9"})
    assert "the registry has no" in message and "docker push" in message


def test_only_the_course_registry_on_loopback_is_asked(by_hand_artefacts: dict[str, str]) -> None:
    message = _message({**by_hand_artefacts, "pushed": "registry.example.com/x:1"})
    assert "is not 127.0.0.1:PORT/NAME:TAG" in message


def test_an_answer_of_the_wrong_shape_gets_a_hint_not_an_exception() -> None:
    assert "pass {" in _message("nb06-by-hand:dev")
