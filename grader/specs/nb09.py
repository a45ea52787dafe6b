"""Hidden grading spec for notebook 09 (deploying in the wild).

No browser, no account: the README is parsed as Spaces reads it, and the Azure functions are
called as azmlinfsrv calls them (course_pkg.checks.nb09).

Exercises 1 and 2 (the student's Streamlit page and Gradio app) are self-checked only: their
checks start a web server and drive it in headless Chromium, and the grading image has no
browser (nor should a student's page get one inside the sandbox). They carry no points here.
"""

from __future__ import annotations

from typing import Any

from grader.specs.model import Assignment, Question, keys_equal

README_PROBE = """
def probe():
    from course_pkg.checks.nb09 import README_HINTS, probe_space_readme
    result = probe_space_readme(space_readme)
    return {key: bool(result.get(key)) for key in README_HINTS}
"""

AZURE_PROBE = """
def probe():
    from course_pkg.checks.nb09 import probe_azure
    return probe_azure(init, run)
"""


def _readme_expected() -> dict[str, Any]:
    from course_pkg.checks.nb09 import readme_expected

    return readme_expected()


def _azure_expected() -> dict[str, Any]:
    from course_pkg.checks.nb09 import azure_expected

    return azure_expected()


ASSIGNMENT = Assignment(
    id="09",
    notebook="09_deploying_in_the_wild.ipynb",
    title="Deploying in the wild",
    questions=(
        Question(
            "space_readme",
            2,
            "A Hugging Face Space's README header",
            README_PROBE,
            _readme_expected,
            keys_equal,
            hint="front matter: title, sdk: gradio, sdk_version, app_file, python_version quoted",
            answers=("space_readme",),
        ),
        Question(
            "azure_score",
            4,
            "An Azure ML scoring script (init and run)",
            AZURE_PROBE,
            _azure_expected,
            keys_equal,
            hint='init loads AZUREML_MODEL_DIR; run answers {"error": ...} to bad input',
            answers=("init", "run"),
        ),
    ),
    cell_timeout=300,
    wall_timeout=900,
)
