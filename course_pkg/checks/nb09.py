"""Self-checks for notebook 09 (deploying in the wild), and the pieces the grader reuses.

Both run without a browser, a network or an account: the README header is parsed the way
Spaces reads it, and the Azure ML functions are called the way ``azmlinfsrv`` calls them
(``init()`` once with ``AZUREML_MODEL_DIR`` set, then ``run(body_as_text)``).
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import os
import tempfile
import textwrap
import warnings
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


# --- 3 · a Gradio app, and 4 · a Streamlit app, each driven in headless Chromium -------------
# Both are self-checks only: grading them would need a browser and a web server inside the
# sandbox, which the grading image does not have (docs/GRADING.md).

NO_BROWSER = "headless Chromium is not installed: `apt-get install chromium chromium-driver`"


def _churn_model_and_row() -> tuple[Any, dict[str, Any]]:
    from course_pkg.demos.inference import OnnxModel

    model = OnnxModel(churn_package())
    return model, model.form()[1]


@register("09.gradio_app", forbidden=("course_pkg.demos.gradio_app.build_demo",))
def _gradio_app(answer: Any) -> str:
    import gradio as gr

    from course_pkg.browser import chromium, find_chromium, wait_for_text, wait_for_value
    from course_pkg.serving.process import free_port

    build = callable_answer(answer, "churn_gradio")
    model, row = _churn_model_and_row()
    demo = build(model)
    expect(isinstance(demo, gr.Blocks), "return the gr.Blocks (or gr.Interface), not launched")
    expect(find_chromium() is not None, NO_BROWSER)
    port = free_port()
    # gradio's queue statistics use pandas options pandas 3 deprecates; the warnings would
    # land in the student's notebook (or fail a test that treats warnings as errors).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"gradio\.")
        demo.launch(
            server_name="127.0.0.1",
            server_port=port,
            prevent_thread_lock=True,
            inline=False,  # no iframe in the notebook: the check drives its own browser
            quiet=True,
            ssr_mode=False,
        )
        try:
            with chromium() as browser:
                browser.get(f"http://127.0.0.1:{port}/")
                wait_for_text(browser, "Predict churn")
                browser.find_element("xpath", "//button[contains(., 'Predict churn')]").click()
                shown = wait_for_value(browser, "#churn-result textarea", "says")
        finally:
            with contextlib.redirect_stdout(io.StringIO()):  # "Closing server running on port"
                demo.close()
    want = model.predict_row(row).headline()
    expect(shown == want, f"the page shows {shown!r}; the model says {want!r} for the example row")
    return f"a real browser pressed 'Predict churn' and read {want!r}"


STREAMLIT_SCRIPT = """import sys

import streamlit as st

from course_pkg.demos.inference import OnnxModel

{source}

model = st.cache_resource(lambda: OnnxModel({package!r}))()
# The exercise is to write the page: the course's own is unimportable while it runs.
REFERENCE = "course_pkg.demos.streamlit_app"
saved = sys.modules.pop(REFERENCE, None)
sys.modules[REFERENCE] = None
try:
    {name}(model)
finally:
    del sys.modules[REFERENCE]
    if saved is not None:
        sys.modules[REFERENCE] = saved
"""


def streamlit_script(page: Any, package: Path) -> str:
    """The student's page function, copied into a script ``streamlit run`` can execute."""

    return STREAMLIT_SCRIPT.format(
        source=textwrap.dedent(inspect.getsource(page)), package=str(package), name=page.__name__
    )


def _first_run(script: Path) -> None:
    """Run the page once in-process (streamlit's AppTest): an unfinished or crashing page is
    reported before any browser starts."""
    import logging

    from streamlit.testing.v1 import AppTest

    # AppTest's own thread warns "missing ScriptRunContext" (harmless, says streamlit): a
    # student's notebook should show their page's errors, not that.
    quiet = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        errors = AppTest.from_file(str(script), default_timeout=60).run().exception
    finally:
        quiet.setLevel(level)
    text = " ".join(f"{e.message} {' '.join(e.stack_trace)}" for e in errors)
    if "NotImplementedError" in text:
        raise NotImplementedError
    if "streamlit_app" in text:
        raise CheckFailed(_delegation_message())
    expect(not errors, f"the page raised: {text[:300]}")


def _delegation_message() -> str:
    from course_pkg.checks import _delegation

    return _delegation.message(["course_pkg.demos.streamlit_app.churn_tab"])


@register("09.streamlit_app", forbidden=("course_pkg.demos.streamlit_app.churn_tab",))
def _streamlit_app(answer: Any) -> str:
    from course_pkg import demo_process
    from course_pkg.browser import chromium, find_chromium, page_text, wait_until
    from course_pkg.checks import _delegation

    page = inspect.unwrap(callable_answer(answer, "churn_page"))  # the check's watch wraps it
    captured = tuple(c.cell_contents for c in getattr(page, "__closure__", None) or ())
    hits = _delegation.identity_hits(captured, ("course_pkg.demos.streamlit_app.churn_tab",))
    if hits:
        raise CheckFailed(_delegation.message(hits, identity=True))
    expect(not captured, "write churn_page self-contained: it runs in streamlit's own process")
    model, row = _churn_model_and_row()
    folder = Path(tempfile.mkdtemp(prefix="nb09-streamlit-"))
    script = folder / "churn_app.py"
    try:
        script.write_text(streamlit_script(page, churn_package()))
    except (OSError, TypeError):
        raise CheckFailed("define churn_page with def in a cell: its source is copied") from None
    _first_run(script)
    expect(find_chromium() is not None, NO_BROWSER)
    with demo_process.StreamlitApp(script=script) as app, chromium() as browser:
        browser.get(app.url)
        text = wait_until(
            lambda: (t := page_text(browser)) and ("Predict churn" in t or "Error" in t) and t,
            "the form (a 'Predict churn' button)",
        )
        if "NotImplementedError" in text:
            raise NotImplementedError
        expect("Predict churn" in text, f"no 'Predict churn' button; the page says: {text[:200]}")
        browser.find_element("xpath", "//button[contains(., 'Predict churn')]").click()
        text = wait_until(
            lambda: (t := page_text(browser)) and ("Prediction:" in t or "Error" in t) and t,
            "'Prediction: ...' after the click",
        )
    want = f"Prediction: {model.predict_row(row).headline()}"
    shown = next((line for line in text.splitlines() if line.startswith("Prediction:")), "")
    expect(shown == want, f"the page shows {shown or text[:200]!r}; expected {want!r}")
    return f"streamlit ran your page; a real browser submitted the form and read {want!r}"
