"""Self-checks for notebook 04 (FastAPI serving), and the pieces the grader reuses.

Every check drives the student's object in-process (pydantic model, FastAPI app through
``TestClient``, Flask app through its test client) with the same cases the grader uses.
"""

from __future__ import annotations

import io
import json
import math
from functools import cache
from pathlib import Path
from typing import Any

from course_pkg.checks._registry import CheckFailed, callable_answer, expect, register

GOOD: dict[str, Any] = {
    "senior_citizen": 0,
    "tenure_months": 12,
    "contract": "one-year",
    "internet_service": "dsl",
    "payment_method": "mailed-check",
    "paperless_billing": "yes",
    "monthly_charges": 50.5,
    "total_charges": 606.0,
    "support_calls_90d": 1,
}
# (label, row, should validate)
SCHEMA_CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("a valid row", GOOD, True),
    (
        "a float where the schema says float (an int is fine too)",
        {**GOOD, "monthly_charges": 50},
        True,
    ),
    ("an unknown category", {**GOOD, "contract": "weekly"}, False),
    ("a number sent as a string", {**GOOD, "tenure_months": "12"}, False),
    ("a boolean for an integer", {**GOOD, "senior_citizen": True}, False),
    ("NaN", {**GOOD, "monthly_charges": math.nan}, False),
    ("infinity", {**GOOD, "total_charges": math.inf}, False),
    ("an extra field", {**GOOD, "customer_id": 7}, False),
    ("a missing field", {k: v for k, v in GOOD.items() if k != "contract"}, False),
]


def schema_results(model: Any) -> list[bool]:
    """For each case, did ``model(**row)`` validate? (shared with the grader)."""
    from pydantic import ValidationError

    results = []
    for _, row, _ in SCHEMA_CASES:
        try:
            model.model_validate(row)
        except ValidationError:
            results.append(False)
        else:
            results.append(True)
    return results


@register("04.request_schema")
def _request_schema(answer: Any) -> str:
    expect(hasattr(answer, "model_validate"), "pass the pydantic model class (ChurnRow)")
    for (label, _, want), got in zip(SCHEMA_CASES, schema_results(answer), strict=True):
        if got != want:
            verb = "accepted" if got else "rejected"
            raise CheckFailed(
                f"{label} was {verb}; it should be {'accepted' if want else 'rejected'}"
            )
    return "accepts valid rows, rejects every kind of bad one"


@cache
def reference_package() -> Path:
    """A churn package built once per process (in a temporary directory)."""
    import tempfile

    from course_pkg.training import package_churn

    path: Path = package_churn(Path(tempfile.mkdtemp(prefix="nb04-check-")) / "churn").path
    return path


@cache
def reference_predictor() -> Any:
    from course_pkg.onnx_export import OnnxPredictor

    return OnnxPredictor.from_package(reference_package())


def reference_rows(count: int = 5) -> list[dict[str, Any]]:
    from course_pkg.training import train_churn

    frame = train_churn().x_test.head(count)
    return list(json.loads(frame.to_json(orient="records")))


def expected_labels(rows: list[dict[str, Any]]) -> list[int]:
    return [int(v) for v in reference_predictor().predict(rows)]


def probe_app(app: Any, *, csv: bool = False) -> dict[str, Any]:
    """Drive a student's FastAPI app the way the checks and the grader do."""
    from fastapi.testclient import TestClient

    rows = reference_rows()
    with TestClient(app, raise_server_exceptions=False) as client:
        good = client.post("/predict", json={"records": rows})
        bad = client.post("/predict", json={"records": [{**rows[0], "contract": "weekly"}]})
        out: dict[str, Any] = {"good_status": good.status_code, "bad_status": bad.status_code}
        try:
            predictions = good.json()["predictions"]
            out["labels"] = [p["label"] for p in predictions]
            out["probabilities_sum_to_1"] = all(
                abs(sum(p["probabilities"].values()) - 1) < 1e-4 for p in predictions
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            out["labels"], out["probabilities_sum_to_1"] = None, False
        if csv:
            import pandas as pd

            body = pd.DataFrame(rows).to_csv(index=False)
            response = client.post(
                "/predict.csv", content=body, headers={"content-type": "text/csv"}
            )
            out["csv_status"] = response.status_code
            try:
                table = pd.read_csv(io.StringIO(response.text))
                out["csv_labels"] = [int(v) for v in table["prediction"]]
                out["csv_has_probability"] = "probability_1" in table.columns
            except Exception:
                out["csv_labels"], out["csv_has_probability"] = None, False
    return out


@register("04.predict_endpoint", forbidden=("course_pkg.serving.app.create_app",))
def _predict_endpoint(answer: Any) -> str:
    fn = callable_answer(answer, "make_app")
    result = probe_app(fn(reference_predictor()))
    expect(result["good_status"] == 200, f"POST /predict answered {result['good_status']}, not 200")
    expect(
        result["labels"] == expected_labels(reference_rows()),
        'answer {"predictions": [{"label": ..., "probabilities": {...}}, ...]} with the '
        "model's labels, one entry per record, in order",
    )
    expect(result["probabilities_sum_to_1"], "probabilities: one entry per class, summing to 1")
    expect(
        result["bad_status"] == 422,
        f"an unknown category got {result['bad_status']}: declare the body with your schema "
        "so FastAPI answers 422",
    )
    return "200 with labels and probabilities; 422 for an unknown category"


@register("04.csv_endpoint", forbidden=("course_pkg.serving.app.create_app",))
def _csv_endpoint(answer: Any) -> str:
    fn = callable_answer(answer, "make_app")
    result = probe_app(fn(reference_predictor()), csv=True)
    expect(result["csv_status"] == 200, f"POST /predict.csv answered {result['csv_status']}")
    expect(
        result["csv_labels"] == expected_labels(reference_rows()),
        "return the CSV with a 'prediction' column added (the model's labels, in row order)",
    )
    expect(result["csv_has_probability"], "add a 'probability_1' column too")
    return "CSV in, CSV out with predictions appended"


def probe_flask(app: Any) -> dict[str, Any]:
    client = app.test_client()
    rows = reference_rows()
    good = client.post("/predict", json={"records": rows})
    bad = client.post("/predict", json={"records": [{**rows[0], "contract": "weekly"}]})
    result: dict[str, Any] = {"good_status": good.status_code, "bad_status": bad.status_code}
    body = good.get_json(silent=True) or {}
    try:
        result["labels"] = [p["label"] for p in body["predictions"]]
    except (KeyError, TypeError):
        result["labels"] = None
    bad_body = bad.get_json(silent=True) or {}
    result["bad_names_field"] = "contract" in json.dumps(bad_body)
    return result


@register("04.flask_app")
def _flask_app(answer: Any) -> str:
    fn = callable_answer(answer, "make_flask_app")
    result = probe_flask(fn(reference_predictor()))
    expect(result["good_status"] == 200, f"POST /predict answered {result['good_status']}")
    expect(result["labels"] == expected_labels(reference_rows()), "same JSON contract as FastAPI")
    expect(result["bad_status"] == 422, "Flask does not validate for you: answer 422 yourself")
    expect(result["bad_names_field"], "the 422 body should name the field that is wrong")
    return "same contract as the FastAPI app"


@cache
def reference_digits_predictor() -> Any:
    """The digits model notebook 04 serves, packaged once per process."""
    import tempfile

    from course_pkg.onnx_export import OnnxPredictor
    from course_pkg.training import package_digits

    root = Path(tempfile.mkdtemp(prefix="nb04-check-"))
    return OnnxPredictor.from_package(package_digits(root / "digits").path)


def _png(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def digit_uploads(count: int = 5) -> list[bytes]:
    """Real PNGs, written by Pillow, of ``count`` shipped digits of different labels."""
    from PIL import Image

    from course_pkg.datasets.digits import load_digit_images

    chosen: dict[int, Any] = {}
    for image in load_digit_images():
        chosen.setdefault(image.label, image.path)
    uploads = []
    for path in list(chosen.values())[:count]:
        with Image.open(path) as opened:
            uploads.append(_png(opened.convert("L")))
    return uploads


def expected_digit_labels(uploads: list[bytes]) -> list[int]:
    import pandas as pd

    from course_pkg.demos.inference import image_to_features

    rows = pd.DataFrame([image_to_features(data)[0] for data in uploads])
    labels, _ = reference_digits_predictor().predict_both(rows)
    return [int(v) for v in labels]


def probe_image_app(app: Any) -> dict[str, Any]:
    """POST real PNGs, a wrong-sized PNG and a non-image to ``/predict/image`` (TestClient)."""
    from fastapi.testclient import TestClient
    from PIL import Image

    def upload(client: Any, data: bytes, name: str = "digit.png") -> Any:
        return client.post("/predict/image", files={"file": (name, data, "image/png")})

    out: dict[str, Any] = {}
    with TestClient(app, raise_server_exceptions=False) as client:
        answers = [upload(client, data) for data in digit_uploads()]
        out["statuses"] = sorted({a.status_code for a in answers})
        try:
            bodies = [a.json() for a in answers]
            out["labels"] = [int(b["label"]) for b in bodies]
            out["ten_probabilities_sum_to_1"] = all(
                sorted(b["probabilities"]) == [str(d) for d in range(10)]
                and abs(sum(b["probabilities"].values()) - 1) < 1e-4
                for b in bodies
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            out["labels"], out["ten_probabilities_sum_to_1"] = None, False
        wrong = upload(client, _png(Image.new("L", (30, 20))))
        out["wrong_size_status"] = wrong.status_code
        out["wrong_size_says_size"] = wrong.status_code < 500 and "30" in wrong.text
        text = upload(client, b"these bytes are not an image\n", "notes.png")
        out["non_image_status"] = text.status_code
        out["non_image_says_image"] = text.status_code < 500 and "image" in text.text.lower()
    return out


IMAGE_FORBIDDEN = ("course_pkg.demos.inference.image_to_features",)


def endpoint_references(app: Any, forbidden: tuple[str, ...] = IMAGE_FORBIDDEN) -> list[str]:
    """The forbidden names an app's endpoints (and the functions they call) refer to.

    Read from the code, not watched at run time: TestClient runs an endpoint after the
    answer (the app factory) has returned, in a thread of its own, outside the watched call.
    """
    import inspect
    from types import CodeType, ModuleType

    from course_pkg.checks._delegation import resolve

    targets = {id(obj): name for name in forbidden if (obj := resolve(name)) is not None}
    hits: dict[str, None] = {}
    seen: set[int] = set()

    def names(code: CodeType) -> set[str]:
        found = set(code.co_names) | set(code.co_freevars)
        for const in code.co_consts:
            if isinstance(const, CodeType):
                found |= names(const)
        return found

    def visit(function: Any, depth: int) -> None:
        function = inspect.unwrap(function)
        code = getattr(function, "__code__", None)
        if not isinstance(code, CodeType) or id(function) in seen or depth > 4:
            return
        seen.add(id(function))
        scope = dict(getattr(function, "__globals__", {}))
        for var, cell in zip(code.co_freevars, function.__closure__ or (), strict=False):
            try:
                scope[var] = cell.cell_contents
            except ValueError:  # an empty cell
                continue
        attributes = names(code)
        for name in attributes:
            obj = scope.get(name)
            if id(obj) in targets:
                hits[targets[id(obj)]] = None
            elif isinstance(obj, ModuleType) and obj.__name__.startswith("course_pkg"):
                for attribute in attributes:
                    inner = getattr(obj, attribute, None)
                    if id(inner) in targets:
                        hits[targets[id(inner)]] = None
            elif inspect.isfunction(obj):
                visit(obj, depth + 1)

    for route in getattr(app, "routes", []):
        endpoint = getattr(route, "endpoint", None)
        if endpoint is not None:
            visit(endpoint, 0)
    return list(hits)


@register("04.image_endpoint", forbidden=IMAGE_FORBIDDEN)
def _image_endpoint(answer: Any) -> str:
    from course_pkg.checks._delegation import message

    fn = callable_answer(answer, "make_image_app")
    app = fn(reference_digits_predictor())
    used = endpoint_references(app)
    expect(not used, message(used))
    result = probe_image_app(app)
    expect(result["statuses"] == [200], f"a PNG of a digit got {result['statuses']}, not 200")
    expect(
        result["labels"] == expected_digit_labels(digit_uploads()),
        'answer {"label": ..., "probabilities": {"0": ..., ..., "9": ...}} with the model\'s '
        "label: grey, 8×8 (BOX resampling), intensities 0-16, one row of 64",
    )
    expect(result["ten_probabilities_sum_to_1"], 'probabilities: keys "0"…"9", summing to 1')
    expect(
        result["non_image_status"] == 415,
        f"bytes that are not an image got {result['non_image_status']}: answer 415",
    )
    expect(result["non_image_says_image"], "say in the 415's message that an image was expected")
    expect(
        result["wrong_size_status"] == 422,
        f"a 30×20 image got {result['wrong_size_status']}: answer 422 for a non-square image",
    )
    expect(result["wrong_size_says_size"], "name the size you got (30×20) in the 422's message")
    return "PNG digits labelled with ten probabilities; 415 for a non-image, 422 for a bad size"
