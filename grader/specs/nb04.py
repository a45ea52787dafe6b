"""Hidden grading spec for notebook 04 (FastAPI serving)."""

from __future__ import annotations

from grader.specs.model import Assignment, Question, fraction_equal, keys_equal

SCHEMA_PROBE = """
def probe():
    from course_pkg.checks.nb04 import schema_results
    return schema_results(ChurnRow)
"""

APP_PROBE = """
def probe():
    from course_pkg.checks.nb04 import probe_app, reference_predictor
    return probe_app(make_app(reference_predictor()))
"""

CSV_PROBE = """
def probe():
    from course_pkg.checks.nb04 import probe_app, reference_predictor
    result = probe_app(make_csv_app(reference_predictor()), csv=True)
    return {k: result[k] for k in ("csv_status", "csv_labels", "csv_has_probability")}
"""

FLASK_PROBE = """
def probe():
    from course_pkg.checks.nb04 import probe_flask, reference_predictor
    return probe_flask(make_flask_app(reference_predictor()))
"""

IMAGE_PROBE = """
def probe():
    from course_pkg.checks.nb04 import probe_image_app, reference_digits_predictor
    return probe_image_app(make_image_app(reference_digits_predictor()))
"""


def _image_expected() -> dict[str, object]:
    from course_pkg.checks.nb04 import digit_uploads, expected_digit_labels

    return {
        "statuses": [200],
        "labels": expected_digit_labels(digit_uploads()),
        "ten_probabilities_sum_to_1": True,
        "non_image_status": 415,
        "non_image_says_image": True,
        "wrong_size_status": 422,
        "wrong_size_says_size": True,
    }


def _labels() -> list[int]:
    from course_pkg.checks.nb04 import expected_labels, reference_rows

    return expected_labels(reference_rows())


def _schema_expected() -> list[bool]:
    from course_pkg.checks.nb04 import SCHEMA_CASES

    return [ok for _, _, ok in SCHEMA_CASES]


ASSIGNMENT = Assignment(
    id="04",
    notebook="04_fastapi_server.ipynb",
    title="Serving over HTTP",
    # Demonstrations no probe needs (a test checks nothing later reads what only they bind),
    # skipped while unchanged: the Flask-vs-FastAPI load comparison (~11 s of requests)
    demo_cells=("0023d316",),
    questions=(
        Question(
            "request_schema",
            2,
            "Write the request schema",
            SCHEMA_PROBE,
            _schema_expected,
            fraction_equal,
            hint="strict, extra='forbid', Literal categories, finite floats",
        ),
        Question(
            "predict_endpoint",
            3,
            "A validated predict endpoint",
            APP_PROBE,
            lambda: {
                "good_status": 200,
                "bad_status": 422,
                "labels": _labels(),
                "probabilities_sum_to_1": True,
            },
            keys_equal,
            hint="declare the body with a pydantic model",
            answers=("make_app",),
        ),
        Question(
            "csv_endpoint",
            3,
            "Add the CSV endpoint",
            CSV_PROBE,
            lambda: {"csv_status": 200, "csv_labels": _labels(), "csv_has_probability": True},
            keys_equal,
            hint="read the body, append prediction and probability_1",
            answers=("make_app",),
        ),
        Question(
            "image_endpoint",
            3,
            "An image-upload endpoint",
            IMAGE_PROBE,
            _image_expected,
            keys_equal,
            hint="UploadFile → Pillow → 8×8 grey 0-16; 415 for a non-image, 422 for a bad size",
            answers=("make_image_app",),
        ),
        Question(
            "flask_app",
            2,
            "The same contract in Flask",
            FLASK_PROBE,
            lambda: {
                "good_status": 200,
                "bad_status": 422,
                "labels": _labels(),
                "bad_names_field": True,
            },
            keys_equal,
            hint="validate yourself; 422 naming the field",
        ),
    ),
    cell_timeout=180,
    wall_timeout=480,
)
