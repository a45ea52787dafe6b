"""Self-checks for notebook 07 §1: an MLflow model and the ``mlflow models serve`` command,
both written by the student.

Each check builds its own small scikit-learn pipeline on columns it names from a seed (so a
signature cannot be typed from memory), hands it to the answer, then judges what the answer
produced with MLflow itself: the ``MLmodel`` file it wrote (flavours, signature, input
example), ``mlflow.pyfunc.load_model`` predictions on rows the answer never saw, and — for the
command — the real server started from exactly the argv the answer returned, on 127.0.0.1
only. The ``run_*`` functions return plain JSON observations, so the grader's probes
(grader/specs/nb07.py) run the same code in the sandbox and judge on the host.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from course_pkg.checks._registry import callable_answer, expect, register


def mlflow_case(seed: int) -> tuple[Any, Any, Any]:
    """(fitted pipeline, example frame, fresh rows): 3 columns — an integer, a float and a
    string one — named after ``seed``; 120 training rows, 40 rows the answer never sees."""
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(seed)
    months, spend, plan = f"months_{seed}", f"spend_{seed}", f"plan_{seed}"
    frame = pd.DataFrame(
        {
            months: rng.integers(1, 72, 160),
            spend: rng.normal(60, 25, 160).round(2),
            plan: rng.choice(["basic", "plus", "pro"], 160),
        }
    )
    label = ((frame[spend] > 60) ^ (frame[plan] == "pro")).astype(int)
    prepare = ColumnTransformer(
        [("plan", OneHotEncoder(handle_unknown="ignore"), [plan])], remainder=StandardScaler()
    )
    pipeline = Pipeline([("prepare", prepare), ("model", LogisticRegression())])
    pipeline.fit(frame.iloc[:120], label.iloc[:120])
    return pipeline, frame.iloc[:120].reset_index(drop=True), frame.iloc[120:]


@contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow warns (integer columns, its own deprecations) through warnings and its logger;
    in a notebook that lands on stderr under the check's verdict. Hidden while a check runs."""
    import logging

    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def import_mlflow() -> Any:
    """``mlflow`` with its pyfunc, sklearn, models and CLI modules, imported quietly (MLflow
    3.17 warns about its own type hints when ``mlflow.pyfunc`` is first imported)."""
    with _quiet_mlflow():
        import mlflow.models.cli
        import mlflow.pyfunc
        import mlflow.sklearn
    return mlflow


def signature_columns(signature_inputs: Any) -> list[list[str]]:
    """[[column, MLflow type], ...] of a signature's input schema."""
    return [[str(c.get("name")), str(c.get("type"))] for c in signature_inputs.to_dict()]


def run_mlflow_model(fn: Any, seed: int) -> dict[str, Any]:
    """Call ``fn(pipeline, example, path)``; read the MLmodel it wrote and predict with pyfunc."""
    mlflow = import_mlflow()
    pipeline, example, rows = mlflow_case(seed)
    seen: dict[str, Any] = {"mlmodel": False, "flavors": None, "inputs": None}
    seen.update(has_outputs=False, input_example=False, predictions=None)
    with tempfile.TemporaryDirectory(prefix="nb07-mlflow-") as tmp, _quiet_mlflow():
        path = Path(tmp) / "model"
        fn(pipeline, example, path)
        seen["mlmodel"] = (path / "MLmodel").is_file()
        if not seen["mlmodel"]:
            return seen
        info = mlflow.models.Model.load(str(path))
        seen["flavors"] = sorted(info.flavors)
        if info.signature is not None:
            seen["inputs"] = signature_columns(info.signature.inputs)
            seen["has_outputs"] = info.signature.outputs is not None
        example_info = info.saved_input_example_info or {}
        seen["input_example"] = (path / str(example_info.get("artifact_path", "-"))).is_file()
        if "python_function" in info.flavors:
            try:  # the signature is enforced here: a wrong one makes MLflow refuse the rows
                predicted = mlflow.pyfunc.load_model(str(path)).predict(rows)
                seen["predictions"] = [int(v) for v in predicted]
            except Exception as error:  # MlflowException, or the model's own error
                seen["predictions"] = f"pyfunc could not predict: {str(error)[:300]}"
    return seen


def mlflow_expected(seed: int) -> dict[str, Any]:
    """What a faithful save gives, computed with MLflow's own signature inference."""
    mlflow = import_mlflow()
    pipeline, example, rows = mlflow_case(seed)
    with _quiet_mlflow():
        signature = mlflow.models.infer_signature(example, pipeline.predict(example))
    return {
        "mlmodel": True,
        "flavors": ["python_function", "sklearn"],
        "inputs": signature_columns(signature.inputs),
        "has_outputs": True,
        "input_example": True,
        "predictions": [int(v) for v in pipeline.predict(rows)],
    }


MODEL_HINTS = {
    "mlmodel": "no MLmodel file in the directory you were given: "
    "mlflow.sklearn.save_model(pipeline, path, ...) writes it (path must not exist yet)",
    "flavors": "the model needs the 'sklearn' and 'python_function' flavors: save it with "
    "mlflow.sklearn.save_model",
    "inputs": "the signature's inputs must be the example's columns with their types: "
    "signature=infer_signature(example, pipeline.predict(example))",
    "has_outputs": "the signature has no outputs: infer it from the inputs *and* the "
    "predictions, infer_signature(example, pipeline.predict(example))",
    "input_example": "no input example saved: pass input_example=example.head(2)",
    "predictions": "mlflow.pyfunc.load_model(path).predict differs from the pipeline on rows "
    "it never saw: save the pipeline you are given",
}


@register("07.mlflow_model", forbidden=("course_pkg.servers.mlflow_serve.save_churn_mlflow",))
def _mlflow_model(answer: Any) -> str:
    seen = run_mlflow_model(callable_answer(answer, "save_mlflow_model"), seed=0)
    want = mlflow_expected(0)
    for key, hint in MODEL_HINTS.items():
        if key == "inputs" and seen[key] is not None and seen[key] != want[key]:
            hint = f"the signature's inputs are {seen[key]}, the example's columns {want[key]}"
        if key == "predictions" and isinstance(seen[key], str):  # MLflow refused the rows
            hint = f"{seen[key]} — save the pipeline you are given, with its own signature"
        expect(seen[key] == want[key], hint)
    return (
        f"MLmodel with flavors {want['flavors']}, signature {len(want['inputs'])} columns, "
        f"an input example; pyfunc predicts like the pipeline on {len(want['predictions'])} rows"
    )


# --- the `mlflow models serve` command line --------------------------------------------------


def save_case_model(seed: int, path: Path) -> tuple[Any, Any]:
    """The check's own MLflow model of ``mlflow_case(seed)`` at ``path``: (pipeline, rows)."""
    from course_pkg.servers.mlflow_serve import model_requirements

    mlflow = import_mlflow()
    pipeline, example, rows = mlflow_case(seed)
    with _quiet_mlflow():
        mlflow.sklearn.save_model(
            pipeline,
            str(path),
            signature=mlflow.models.infer_signature(example, pipeline.predict(example)),
            pip_requirements=model_requirements(),  # pinned: no import sniffing (slow)
        )
    return pipeline, rows


def read_serve_command(argv: Any, model_dir: str, port: int) -> dict[str, Any]:
    """What ``mlflow models serve`` would do with ``argv``, parsed by MLflow's own command-line
    definition (click): host, port, model and environment manager, each as the command line
    sets it (an option left to a default or an environment variable counts as not set)."""
    serve = import_mlflow().models.cli.serve
    seen: dict[str, Any] = {"error": None, "host": None, "env_manager": None}
    seen.update(port_right=False, model_right=False)
    if not isinstance(argv, list | tuple) or not all(isinstance(a, str) for a in argv):
        seen["error"] = "return the command as a list of strings: ['mlflow', 'models', ...]"
        return seen
    if len(argv) < 3 or Path(argv[0]).name != "mlflow" or list(argv[1:3]) != ["models", "serve"]:
        seen["error"] = f"the command starts with mlflow models serve, not {' '.join(argv[:3])!r}"
        return seen
    try:
        with _quiet_mlflow():  # e.g. its warning that conda is discouraged
            context = serve.make_context("serve", list(argv[3:]))
    except Exception as error:  # click's usage errors: what mlflow itself would print
        format_message = getattr(error, "format_message", None)
        message = format_message() if callable(format_message) else str(error)
        seen["error"] = f"mlflow models serve would refuse these options: {message}"
        return seen
    params = context.params

    def given(name: str) -> bool:
        return getattr(context.get_parameter_source(name), "name", "") == "COMMANDLINE"

    seen["host"] = params["host"] if given("host") else None
    if params.get("no_conda"):  # the pre-2.0 spelling of --env-manager local
        seen["env_manager"] = "local"
    elif given("env_manager"):
        seen["env_manager"] = params["env_manager"]
    seen["port_right"] = given("port") and params["port"] == port
    seen["model_right"] = Path(params["model_uri"]).resolve() == Path(model_dir).resolve()
    return seen


def _predict_over_http(argv: list[str], port: int, rows: Any) -> list[int]:
    """Start ``argv`` (its ``mlflow`` taken from this environment), wait for /ping, post the
    rows as ``dataframe_split``, stop it. The server's own output explains a failed start."""
    import httpx

    from course_pkg.processes import LocalServer

    bin_dir = Path(sys.executable).parent
    command = [str(bin_dir / "mlflow"), *argv[1:]]
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",  # its server runs uvicorn
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
    with LocalServer(command, port=port, env=env, ready_path="/ping", startup_timeout=120) as s:
        answer = httpx.post(f"{s.url}/invocations", json=body, timeout=60)
        answer.raise_for_status()
        return [int(v) for v in answer.json()["predictions"]]


def run_serve_command(fn: Any, seed: int) -> dict[str, Any]:
    """Call ``fn(model_dir, port)``; read the argv; start it only if it binds 127.0.0.1."""
    from course_pkg.processes import free_port

    with tempfile.TemporaryDirectory(prefix="nb07-serve-") as tmp:
        model_dir, port = str(Path(tmp) / "model"), free_port()
        _, rows = save_case_model(seed, Path(model_dir))
        argv = fn(model_dir, port)
        seen = read_serve_command(argv, model_dir, port)
        seen["predictions"] = None
        runnable = seen["error"] is None and seen["port_right"] and seen["model_right"]
        if runnable and seen["host"] == "127.0.0.1" and seen["env_manager"] == "local":
            try:
                seen["predictions"] = _predict_over_http(list(argv), port, rows)
            except (RuntimeError, TimeoutError, OSError) as error:
                seen["error"] = f"the server did not answer: {str(error)[-600:]}"
            except Exception as error:  # an HTTP error status or an unexpected body
                seen["error"] = f"/invocations did not answer predictions: {error}"
    return seen


def serve_expected(seed: int) -> dict[str, Any]:
    pipeline, _, rows = mlflow_case(seed)
    return {
        "error": None,
        "host": "127.0.0.1",
        "env_manager": "local",
        "port_right": True,
        "model_right": True,
        "predictions": [int(v) for v in pipeline.predict(rows)],
    }


@register("07.mlflow_serve_command", forbidden=("course_pkg.servers.mlflow_serve.MlflowServer",))
def _mlflow_serve_command(answer: Any) -> str:
    seen = run_serve_command(callable_answer(answer, "serve_command"), seed=0)
    want = serve_expected(0)
    expect(seen["error"] is None, str(seen["error"]))
    expect(seen["model_right"], "serve the model directory you are given: -m MODEL_DIR")
    expect(seen["port_right"], "listen on the port you are given: -p PORT")
    expect(
        seen["host"] == "127.0.0.1",
        f"the server must bind 127.0.0.1 only: say --host 127.0.0.1 (you gave "
        f"{seen['host'] or 'no --host'}; 0.0.0.0 would accept connections from any network). "
        "The check did not start it",
    )
    manager = seen["env_manager"]
    expect(
        manager == "local",
        "--env-manager local: use this environment's packages ("
        + (f"you gave {manager!r}" if manager else "without it MLflow uses virtualenv")
        + ", which builds a new environment from the package index, not reachable here)",
    )
    expect(
        seen["predictions"] == want["predictions"],
        "the server started but its predictions differ from the model's",
    )
    return (
        f"your command served the model on 127.0.0.1: /ping ready, {len(want['predictions'])} "
        "rows predicted through /invocations, server stopped"
    )
