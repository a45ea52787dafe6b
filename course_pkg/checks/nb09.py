"""Self-checks for notebook 09 (deploying in the wild), and the pieces the grader reuses.

Both run without a browser, a network or an account: the README header is parsed the way
Spaces reads it, and the Azure ML functions are called the way ``azmlinfsrv`` calls them
(``init()`` once with ``AZUREML_MODEL_DIR`` set, then ``run(body_as_text)``).
"""

from __future__ import annotations

import json
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from course_pkg.checks._registry import CheckFailed, callable_answer, expect, register

# --- 1 · a Hugging Face Space's README header ------------------------------------------------


def probe_space_readme(space_readme: Any) -> dict[str, Any]:
    from course_pkg.deploy_folders import check_space_readme, front_matter

    text = space_readme("Churn demo", "6.31.0")
    if not isinstance(text, str):
        return {"is_text": False}
    problems = check_space_readme(text)
    header: dict[str, Any] = {}
    body = ""
    if not problems:
        header, body = front_matter(text)
    return {
        "is_text": True,
        "accepted": problems == [],
        "title": header.get("title") == "Churn demo",
        "sdk": header.get("sdk") == "gradio",
        "sdk_version": str(header.get("sdk_version")) == "6.31.0",
        "app_file": header.get("app_file") == "app.py",
        "python_version": header.get("python_version") == "3.11",
        "has_body": bool(body.strip()),
        "problems": problems,
    }


README_HINTS = {
    "is_text": "return the README's text (a str)",
    "accepted": "Spaces would reject it",
    "title": "title: the title argument",
    "sdk": "sdk: gradio",
    "sdk_version": "sdk_version: the version argument (Spaces installs that Gradio)",
    "app_file": "app_file: app.py",
    "python_version": 'python_version: "3.11" (quoted: unquoted, YAML reads 3.10 as 3.1)',
    "has_body": "after the closing '---', a line or two saying what the Space does",
}


def readme_expected() -> dict[str, bool]:
    return {key: True for key in README_HINTS}


@register(
    "09.space_readme",
    forbidden=("course_pkg.deploy_folders.space_header", "course_pkg.deploy_folders.build_space"),
)
def _space_readme(answer: Any) -> str:
    result = probe_space_readme(callable_answer(answer, "space_readme"))
    for key, hint in README_HINTS.items():
        if key == "accepted" and not result.get(key):
            raise CheckFailed(f"{hint}: {'; '.join(result.get('problems', []))}")
        expect(bool(result.get(key)), hint)
    return "front matter Spaces accepts, pinned SDK, quoted Python version, a body"


# --- 2 · an Azure ML scoring script -----------------------------------------------------------


@cache
def churn_package() -> Path:
    from course_pkg.training import package_churn

    return Path(package_churn(Path(tempfile.mkdtemp(prefix="nb09-")) / "churn").path)


def _rows() -> list[dict[str, Any]]:
    from course_pkg.checks.nb04 import GOOD

    return [GOOD, {**GOOD, "contract": "month-to-month", "tenure_months": 2}]


AZURE_BAD_BODIES = {
    "not JSON": "this is not json",
    "no data key": json.dumps({"rows": _rows()}),
    "empty data": json.dumps({"data": []}),
    "a row missing a field": json.dumps({"data": [{"tenure_months": 3}]}),
}


def probe_azure(init: Any, run: Any) -> dict[str, Any]:
    """Call ``init`` and ``run`` as azmlinfsrv does; summarise the answers."""
    previous = os.environ.get("AZUREML_MODEL_DIR")
    os.environ["AZUREML_MODEL_DIR"] = str(churn_package())
    try:
        init()
        answer = run(json.dumps({"data": _rows()}))
        result: dict[str, Any] = {}
        try:
            result["labels"] = [p["label"] for p in answer["predictions"]]
            result["probabilities"] = [
                {k: round(float(v), 4) for k, v in p["probabilities"].items()}
                for p in answer["predictions"]
            ]
            result["version"] = answer["version"]
        except (KeyError, TypeError, ValueError):
            result.update(labels=None, probabilities=None, version=None)
        for name, body in AZURE_BAD_BODIES.items():
            try:
                result[name] = _is_error(run(body))
            except NotImplementedError:
                raise
            except Exception:  # an exception becomes a 500 with a traceback in Azure
                result[name] = False
        return result
    finally:
        if previous is None:
            os.environ.pop("AZUREML_MODEL_DIR", None)
        else:
            os.environ["AZUREML_MODEL_DIR"] = previous


def _is_error(answer: Any) -> bool:
    """``{"error": ...}``, or Microsoft's ``AMLResponse`` with status 400 and that body."""
    if hasattr(answer, "get_json"):
        return bool(answer.status_code == 400 and (answer.get_json() or {}).get("error"))
    return isinstance(answer, dict) and bool(answer.get("error"))


def azure_expected() -> dict[str, Any]:
    from course_pkg.demos import azureml_score

    return probe_azure(azureml_score.init, azureml_score.run)


@register(
    "09.azure_score",
    forbidden=("course_pkg.demos.azureml_score.init", "course_pkg.demos.azureml_score.run"),
)
def _azure_score(answer: Any) -> str:
    expect(
        isinstance(answer, tuple) and len(answer) == 2,
        "pass both functions: check('09.azure_score', (init, run))",
    )
    init, run = (callable_answer(a, n) for a, n in zip(answer, ("init", "run"), strict=True))
    try:
        got = probe_azure(init, run)
    except NotImplementedError:
        raise
    except Exception as error:
        raise CheckFailed(f"init() or run() raised {type(error).__name__}: {error}") from None
    want = azure_expected()
    expect(got["labels"] is not None, 'answer {"model", "version", "predictions": [...]}')
    expect(got["labels"] == want["labels"], f"labels {got['labels']} != {want['labels']}")
    expect(got["probabilities"] == want["probabilities"], "probabilities differ from the model's")
    expect(got["version"] == want["version"], "name the model's version in the answer")
    for name in AZURE_BAD_BODIES:
        expect(got[name], f"{name}: return {{'error': 'what was wrong'}} (no exception: a 500)")
    return "init loads from AZUREML_MODEL_DIR; run predicts and answers bad input with an error"
