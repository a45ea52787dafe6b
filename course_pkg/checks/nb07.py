"""Self-checks for notebook 07 (model servers and monitoring), and the pieces the grader reuses.

None of them needs Java or Prometheus, so they also run in the grading sandbox: the handler
is driven the way TorchServe drives it (a list of request dicts, bodies as bytes or parsed
JSON), the rollout plan is compared with TorchServe's management API, the PromQL is checked
for the parts that make it right, and the MLflow body is sent to the reference server's real
``/invocations`` route in-process. The notebook then runs each answer against the real server.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from course_pkg.checks._registry import CheckFailed, callable_answer, expect, register

# --- 1 · a TorchServe handler ---------------------------------------------------------------


@cache
def digits_torchscript() -> Path:
    from course_pkg.servers.torchserve import train_digits_torchscript

    return train_digits_torchscript(Path(tempfile.mkdtemp(prefix="nb07-")) / "digits.pt")


@cache
def _pixels() -> list[list[float]]:
    from course_pkg.datasets.digits import image_to_features, load_digit_images

    return [image_to_features(image.path)[0].tolist() for image in load_digit_images()[:6]]


def handler_requests() -> list[dict[str, Any]]:
    """One batch as TorchServe hands it over: bodies as raw JSON bytes or already parsed."""
    pixels = _pixels()
    return [
        {"body": bytearray(json.dumps({"pixels": pixels[0]}).encode())},
        {"body": {"pixels": pixels[1]}},
        {"data": json.dumps({"pixels": pixels[2]}).encode()},
        {"body": {"pixels": pixels[3]}},
    ]


def handler_expected() -> list[int]:
    import torch

    model = torch.jit.load(str(digits_torchscript()))
    with torch.inference_mode():
        scores = model(torch.tensor(_pixels()[:4], dtype=torch.float32))
    return [int(label) for label in scores.argmax(dim=1)]


def probe_handler(handler_class: Any) -> dict[str, Any]:
    """Run preprocess → inference → postprocess on one batch, as TorchServe's worker does."""
    import torch

    handler = handler_class()
    handler.model = torch.jit.load(str(digits_torchscript()))
    handler.initialized = True
    outputs = handler.postprocess(handler.inference(handler.preprocess(handler_requests())))
    result: dict[str, Any] = {"count": len(outputs)}
    try:
        result["labels"] = [int(o["label"]) for o in outputs]
        result["sums_to_1"] = all(abs(sum(o["probabilities"]) - 1) < 1e-3 for o in outputs)
    except (KeyError, TypeError, ValueError):
        result["labels"], result["sums_to_1"] = None, False
    try:
        handler.preprocess([{"body": {"pixels": [1.0, 2.0]}}])
        result["refuses_short_input"] = False
    except Exception:  # any exception: TorchServe turns it into an error response
        result["refuses_short_input"] = True
    return result


@register("07.torchserve_handler", forbidden=("course_pkg.servers.torchserve.DIGITS_HANDLER",))
def _torchserve_handler(answer: Any) -> str:
    expect(isinstance(answer, type), "pass the class itself: check(..., DigitsHandler)")
    result = probe_handler(answer)
    expect(
        result["count"] == 4,
        f"TorchServe sends 4 requests in this batch and needs 4 answers back, got "
        f"{result['count']}: one output per request, in order",
    )
    expect(
        result["labels"] is not None,
        'postprocess must return one {"label": int, "probabilities": [10 floats]} per request',
    )
    expect(
        result["labels"] == handler_expected(),
        "the labels differ from the model's: preprocess must read each body (bytes → "
        "json.loads, or an already parsed dict; the key may be 'body' or 'data') and stack "
        "the pixels as float32 in request order",
    )
    expect(result["sums_to_1"], "return softmax probabilities (they must sum to 1)")
    expect(
        result["refuses_short_input"],
        "a request with the wrong number of pixels must raise (TorchServe answers it with an "
        "error), not be padded or predicted",
    )
    return "batches of bytes or parsed bodies, labels and probabilities right, bad input refused"


# --- 2 · a version rollout through the management API -----------------------------------------


ROLLOUT_CASES = [("digits", "digits_v2.mar", "2.0", 2), ("fraud", "fraud_v3.mar", "3.1", 1)]


def _normal(plan: Any) -> list[list[Any]]:
    return [
        [str(method).upper(), str(path), {k: str(v).lower() for k, v in dict(params).items()}]
        for method, path, params in plan
    ]


# Fingerprints of each case's three normalised calls. The plan itself (the answer) lives with
# the grader (grader/specs/nb07.py), which compares the probe's plans on the host.
ROLLOUT_FINGERPRINTS = [
    ["fa0fe673ffabc123", "bde40723fa0b79a6", "5d5fc351cd7f65dc"],
    ["39d7d856e29007a5", "e76114501c4c9d72", "7bfc58f53992b3dc"],
]


def _fingerprint(step: list[Any]) -> str:
    return hashlib.sha256(json.dumps(step, sort_keys=True).encode()).hexdigest()[:16]


def probe_rollout(plan_rollout: Any) -> list[list[list[Any]] | None]:
    """Each case's plan, normalised (None when it cannot be read as calls)."""
    results: list[list[list[Any]] | None] = []
    for case in ROLLOUT_CASES:
        try:
            results.append(_normal(plan_rollout(*case)))
        except (TypeError, ValueError):
            results.append(None)
    return results


@register("07.rollout_plan")
def _rollout_plan(answer: Any) -> str:
    fn = callable_answer(answer, "plan_rollout")
    for case, want in zip(ROLLOUT_CASES, ROLLOUT_FINGERPRINTS, strict=True):
        got = _normal(fn(*case))
        expect(len(got) == 3, f"three calls: register, set-default, scale (got {len(got)})")
        for step, (g, w, what) in enumerate(
            zip(got, want, ("register", "set-default", "scale"), strict=True), start=1
        ):
            if _fingerprint(g) != w:
                raise CheckFailed(
                    f"step {step} ({what}) for {case[0]} {case[2]}: got {g[0]} {g[1]} {g[2]}; "
                    "see the management API table above (methods, paths, query parameters)"
                )
    return "register → set-default → scale, with the right paths and parameters"


# --- 3 · PromQL for p99 latency ---------------------------------------------------------------

METRIC = "course_request_duration_seconds_bucket"


def promql_verdicts(query: Any, job: str = "model-server", window: str = "1m") -> dict[str, bool]:
    """The properties that make a p99 query right (grader and self-check share them)."""
    text = re.sub(r"\s+", "", str(query))
    return {
        "is_a_string": isinstance(query, str),
        "histogram_quantile_0.99": bool(re.match(r"^histogram_quantile\(0?\.99,", text)),
        "rate_of_the_buckets": f"rate({METRIC}{{" in text,
        "over_the_window": f"}}[{window}])" in text,
        "this_job_only": f'job="{job}"' in text,
        "summed_by_le": bool(
            re.search(r"sumby\(le\)\(rate\(", text) or re.search(r"\)\)by\(le\)\)$", text)
        ),
    }


PROMQL_HINTS = {
    "is_a_string": "return the query as a str",
    "histogram_quantile_0.99": "start with histogram_quantile(0.99, ...)",
    "rate_of_the_buckets": f"take rate() of {METRIC} (buckets are counters)",
    "over_the_window": "use the window argument as the range: rate(...[window])",
    "this_job_only": 'select the job with a label matcher: {job="..."}',
    "summed_by_le": "sum the per-route series but keep the bucket boundaries: sum by (le) (...)",
}


@register("07.p99_promql", forbidden=("course_pkg.monitoring.p99_latency",))
def _p99_promql(answer: Any) -> str:
    fn = callable_answer(answer, "p99_query")
    for job, window in (("model-server", "1m"), ("canary", "30s")):
        for name, ok in promql_verdicts(fn(job, window), job, window).items():
            expect(ok, f"{PROMQL_HINTS[name]} (job={job!r}, window={window!r})")
    return "histogram_quantile over rate(buckets[window]) summed by le, for one job"


# --- 4 · MLflow's split format ----------------------------------------------------------------


@cache
def _churn_package() -> Path:
    from course_pkg.training import package_churn

    path: Path = package_churn(Path(tempfile.mkdtemp(prefix="nb07-churn-")) / "churn").path
    return path


def probe_split(to_split: Any) -> dict[str, Any]:
    """Post the student's body to the reference server's /invocations (MLflow protocol)."""
    from fastapi.testclient import TestClient

    from course_pkg.serving import ServerSettings, create_app
    from course_pkg.training import train_churn

    frame = train_churn().x_test.head(7)
    body = to_split(frame)
    result: dict[str, Any] = {"json_serialisable": True}
    try:
        text = json.dumps(body)
    except TypeError:
        return {"json_serialisable": False, "split_shape": False, "status": None, "labels": None}
    split = json.loads(text).get("dataframe_split") if isinstance(body, dict) else None
    result["split_shape"] = isinstance(split, dict) and {"columns", "data"} <= set(split)
    app = create_app([_churn_package()], ServerSettings(background_load=False))
    with TestClient(app) as client:
        answer = client.post(
            "/invocations", content=text, headers={"content-type": "application/json"}
        )
    result["status"] = answer.status_code
    result["labels"] = answer.json().get("predictions") if answer.status_code == 200 else None
    return result


def split_expected() -> dict[str, Any]:
    from course_pkg.onnx_export import OnnxPredictor
    from course_pkg.training import train_churn

    frame = train_churn().x_test.head(7)
    labels = OnnxPredictor.from_package(_churn_package()).predict(frame)
    return {
        "json_serialisable": True,
        "split_shape": True,
        "status": 200,
        "labels": [int(v) for v in labels],
    }


@register("07.mlflow_split")
def _mlflow_split(answer: Any) -> str:
    result = probe_split(callable_answer(answer, "to_dataframe_split"))
    want = split_expected()
    expect(
        result["json_serialisable"],
        "the body must be JSON-serialisable: convert numpy numbers with .tolist() or "
        "frame.to_json(orient='split')",
    )
    expect(
        result["split_shape"],
        'answer {"dataframe_split": {"columns": [...], "data": [[...], ...]}} '
        '(an "index" list is allowed, as pandas writes it)',
    )
    expect(result["status"] == 200, f"/invocations answered {result['status']}, not 200")
    expect(result["labels"] == want["labels"], "rows or columns are out of order")
    return "the server read 7 rows and answered the model's labels"
