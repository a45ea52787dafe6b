"""Hidden grading spec for notebook 07 (model servers and monitoring).

The probes need neither Java nor Prometheus (neither is in the grading image): see
course_pkg.checks.nb07 and nb07_mlflow for how each answer is exercised. The MLflow model is
saved by the student's function and read back with MLflow; the `mlflow models serve` command
the student returns is parsed by MLflow's own option definitions and, when it binds
127.0.0.1, started inside the sandbox (loopback works under `--network none`) and sent one
``dataframe_split`` request. Expected values come from the host's own fit of the same pipeline.
"""

from __future__ import annotations

from typing import Any

from grader.specs.model import Assignment, Question, all_true, fraction_equal, keys_equal

HANDLER_PROBE = """
def probe():
    from course_pkg.checks.nb07 import probe_handler
    return probe_handler(DigitsHandler)
"""

ROLLOUT_PROBE = """
def probe():
    from course_pkg.checks.nb07 import probe_rollout
    return probe_rollout(plan_rollout)
"""

PROMQL_PROBE = """
def probe():
    from course_pkg.checks.nb07 import promql_verdicts
    return promql_verdicts(p99_query("model-server", "1m"), "model-server", "1m")
"""

SPLIT_PROBE = """
def probe():
    from course_pkg.checks.nb07 import probe_split
    return probe_split(to_dataframe_split)
"""


MLFLOW_MODEL_SEED, SERVE_SEED = 4, 6
MLFLOW_MODEL_PROBE = f"""
def probe():
    from course_pkg.checks.nb07_mlflow import run_mlflow_model
    return run_mlflow_model(save_mlflow_model, seed={MLFLOW_MODEL_SEED})
"""
SERVE_PROBE = f"""
def probe():
    from course_pkg.checks.nb07_mlflow import run_serve_command
    return run_serve_command(serve_command, seed={SERVE_SEED})
"""


def _mlflow_model_expected() -> dict[str, Any]:
    from course_pkg.checks.nb07_mlflow import mlflow_expected

    return mlflow_expected(MLFLOW_MODEL_SEED)


def _serve_expected() -> dict[str, Any]:
    from course_pkg.checks.nb07_mlflow import serve_expected

    return serve_expected(SERVE_SEED)


def _handler_expected() -> dict[str, Any]:
    from course_pkg.checks.nb07 import handler_expected

    return {
        "count": 4,
        "labels": handler_expected(),
        "sums_to_1": True,
        "refuses_short_input": True,
    }


def rollout_plan(name: str, archive: str, version: str, workers: int) -> list[list[Any]]:
    """The answer: TorchServe 0.12's management API — register (synchronously), make it the
    default, scale. Normalised as the probe normalises (upper-case methods, string values)."""
    sync = "true"
    return [
        ["POST", "/models", {"url": archive, "initial_workers": str(workers), "synchronous": sync}],
        ["PUT", f"/models/{name}/{version}/set-default", {}],
        [
            "PUT",
            f"/models/{name}/{version}",
            {"min_worker": str(workers), "max_worker": str(workers), "synchronous": sync},
        ],
    ]


def _rollout_expected() -> list[list[list[Any]]]:
    from course_pkg.checks.nb07 import ROLLOUT_CASES

    return [rollout_plan(*case) for case in ROLLOUT_CASES]


def _promql_properties() -> list[str]:
    from course_pkg.checks.nb07 import PROMQL_HINTS

    return list(PROMQL_HINTS)


def _split_expected() -> dict[str, Any]:
    from course_pkg.checks.nb07 import split_expected

    return split_expected()


ASSIGNMENT = Assignment(
    id="07",
    notebook="07_model_servers.ipynb",
    title="Model servers and monitoring",
    # Demonstrations no probe needs (a test checks nothing later reads what only they bind),
    # skipped while unchanged: TorchServe serving the .mar files and TF Serving's REST API
    # beside ours (the probes call the student's handler and rollout plan themselves)
    demo_cells=("b22ad57e", "ac2cbf80"),
    questions=(
        Question(
            "mlflow_model",
            2,
            "Save an MLflow model (signature, input example)",
            MLFLOW_MODEL_PROBE,
            _mlflow_model_expected,
            keys_equal,
            hint="mlflow.sklearn.save_model(..., signature=infer_signature(...), input_example=…)",
            answers=("save_mlflow_model",),
        ),
        Question(
            "mlflow_serve_command",
            2,
            "The mlflow models serve command line",
            SERVE_PROBE,
            _serve_expected,
            keys_equal,
            hint="mlflow models serve -m DIR --env-manager local --host 127.0.0.1 -p PORT",
            answers=("serve_command",),
        ),
        Question(
            "torchserve_handler",
            3,
            "A TorchServe handler",
            HANDLER_PROBE,
            _handler_expected,
            keys_equal,
            hint="parse bytes or dicts, stack float32, softmax, one answer per request",
            answers=("DigitsHandler",),
        ),
        Question(
            "rollout_plan",
            2,
            "Roll out a version through the management API",
            ROLLOUT_PROBE,
            _rollout_expected,
            fraction_equal,
            hint="POST /models, PUT set-default, PUT scale",
        ),
        Question(
            "p99_promql",
            3,
            "PromQL for p99 latency",
            PROMQL_PROBE,
            _promql_properties,
            all_true,
            hint="histogram_quantile(0.99, sum by (le) (rate(buckets[window])))",
            answers=("p99_query",),
        ),
        Question(
            "mlflow_split",
            2,
            "MLflow's split format",
            SPLIT_PROBE,
            _split_expected,
            keys_equal,
            hint='{"dataframe_split": {"columns": [...], "data": [[...]]}}',
        ),
    ),
    cell_timeout=300,
    # two more `mlflow models serve` starts (self-check, probe): ~40 s each on a busy 1-CPU box
    wall_timeout=1200,
)
