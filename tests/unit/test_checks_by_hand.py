"""The by-hand framework exercises (01: TorchScript, SavedModel; 07: an MLflow model and the
``mlflow models serve`` command) judge the artefact the answer produced, and each common
mistake gets a hint that says what is wrong and how to fix it.

Right answers pass in test_checks.py (from the solution notebooks); here every answer is a
plausible mistake, checked with the real libraries. No server is started: each wrong command
is refused before one would be.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from course_pkg import check

torch = pytest.importorskip("torch")


def _message(exercise: str, answer: Any) -> str:
    result = check(exercise, answer, quiet=True)
    assert not result.passed, result.message
    return result.message


# --- 01.torchscript -------------------------------------------------------------------------


def test_a_pickled_module_is_not_torchscript() -> None:
    def pickled(net: Any, example: Any, path: Path) -> float:
        torch.save(net, path)
        return 0.0

    message = _message("01.torchscript", pickled)
    assert "torch.jit.load cannot read your file" in message
    assert "torch.jit.save" in message


def test_nothing_written_and_another_network_traced_are_told_apart() -> None:
    assert "no file at the path" in _message("01.torchscript", lambda net, example, path: 0.0)

    def another(net: Any, example: Any, path: Path) -> float:
        other = torch.nn.Sequential(torch.nn.Linear(example.shape[1], 3))
        torch.jit.save(torch.jit.trace(other, example), str(path))
        return 0.0

    assert "differ from the network's" in _message("01.torchscript", another)


def test_the_difference_must_be_measured_and_returned_as_a_float() -> None:
    def traced(net: Any, example: Any, path: Path) -> Any:
        torch.jit.save(torch.jit.trace(net, example), str(path))
        return torch.zeros(())  # a tensor, not a float

    assert "as a float" in _message("01.torchscript", traced)

    def made_up(net: Any, example: Any, path: Path) -> float:
        torch.jit.save(torch.jit.trace(net, example), str(path))
        return 0.5

    assert "you returned 0.5" in _message("01.torchscript", made_up)


# --- 01.saved_model -------------------------------------------------------------------------


def _export(model: Any, path: Path) -> Any:
    model.export(str(path), verbose=False)
    from course_pkg.artifacts.deep import import_tensorflow

    return import_tensorflow().saved_model.load(str(path)).signatures["serving_default"]


def test_no_saved_model_is_told_how_to_export() -> None:
    message = _message("01.saved_model", lambda model, path: {"inputs": {}, "outputs": {}})
    assert "no SavedModel at the path" in message and "model.export(path)" in message


def test_a_typed_signature_is_compared_with_the_real_one() -> None:
    def typed(model: Any, path: Path) -> dict[str, Any]:
        _export(model, path)
        return {
            "inputs": {"features": ("float32", [None, 17])},  # the notebook's, not this model's
            "outputs": {"output_0": ("float32", [None, 2])},
        }

    message = _message("01.saved_model", typed)
    assert message.startswith("inputs: you reported {'features'")
    assert "signatures['serving_default']" in message


def test_a_signature_in_another_shape_gets_the_format() -> None:
    def spec_objects(model: Any, path: Path) -> Any:
        serve = _export(model, path)
        return serve.structured_input_signature  # the raw pair, not the dict asked for

    assert '{"inputs": {name: (dtype, shape)}' in _message("01.saved_model", spec_objects)


def test_tensorflow_objects_in_the_signature_are_accepted() -> None:
    def tf_objects(model: Any, path: Path) -> dict[str, Any]:
        serve = _export(model, path)
        inputs = serve.structured_input_signature[1]
        return {
            "inputs": {k: (v.dtype, v.shape) for k, v in inputs.items()},
            "outputs": {k: (v.dtype, v.shape) for k, v in serve.structured_outputs.items()},
        }

    assert check("01.saved_model", tf_objects, quiet=True).passed


# --- 07.mlflow_model ------------------------------------------------------------------------


def _mlflow() -> Any:
    from course_pkg.checks.nb07_mlflow import import_mlflow

    return import_mlflow()  # quietly: MLflow warns about its own type hints on import


def test_an_mlflow_model_without_signature_or_example_is_told_which() -> None:
    mlflow = _mlflow()
    infer_signature = mlflow.models.infer_signature

    def bare(pipeline: Any, example: Any, path: Path) -> None:
        mlflow.sklearn.save_model(pipeline, str(path), pip_requirements=[])

    assert "infer_signature(example, pipeline.predict(example))" in _message(
        "07.mlflow_model", bare
    )

    def inputs_only(pipeline: Any, example: Any, path: Path) -> None:
        signature = infer_signature(example)
        mlflow.sklearn.save_model(pipeline, str(path), signature=signature, pip_requirements=[])

    assert "no outputs" in _message("07.mlflow_model", inputs_only)

    def no_example(pipeline: Any, example: Any, path: Path) -> None:
        signature = infer_signature(example, pipeline.predict(example))
        mlflow.sklearn.save_model(pipeline, str(path), signature=signature, pip_requirements=[])

    assert "input_example=example.head(2)" in _message("07.mlflow_model", no_example)


def test_a_signature_with_other_types_names_both() -> None:
    mlflow = _mlflow()

    def months_as_floats(pipeline: Any, example: Any, path: Path) -> None:
        floats = example.astype({example.columns[0]: float})
        signature = mlflow.models.infer_signature(floats, pipeline.predict(example))
        mlflow.sklearn.save_model(pipeline, str(path), signature=signature, pip_requirements=[])

    message = _message("07.mlflow_model", months_as_floats)
    assert "the signature's inputs are [['months_0', 'double']" in message
    assert "the example's columns [['months_0', 'long']" in message


# --- 07.mlflow_serve_command ----------------------------------------------------------------


def _serve(*options: str) -> Any:
    def serve_command(model_dir: str, port: int) -> list[str]:
        return ["mlflow", "models", "serve", "-m", model_dir, "-p", str(port), *options]

    return serve_command


def test_a_server_on_every_interface_is_refused_and_not_started() -> None:
    message = _message("07.mlflow_serve_command", _serve("--env-manager", "local", "-h", "0.0.0.0"))
    assert "must bind 127.0.0.1 only" in message and "0.0.0.0" in message
    assert "did not start it" in message


def test_the_host_must_be_on_the_command_line_not_left_to_a_default() -> None:
    message = _message("07.mlflow_serve_command", _serve("--env-manager", "local"))
    assert "you gave no --host" in message


def test_an_environment_manager_other_than_local_is_explained() -> None:
    message = _message("07.mlflow_serve_command", _serve("--host", "127.0.0.1"))
    assert "--env-manager local" in message and "without it MLflow uses virtualenv" in message
    conda = _serve("--host", "127.0.0.1", "--env-manager", "conda")
    assert "'conda'" in _message("07.mlflow_serve_command", conda)


def test_what_mlflow_itself_would_refuse_is_reported_in_its_words() -> None:
    message = _message("07.mlflow_serve_command", _serve("--hots", "127.0.0.1"))
    assert message.startswith("mlflow models serve would refuse these options")
    assert "--hots" in message


def test_wrong_port_model_and_shape_of_the_answer() -> None:
    def other_port(model_dir: str, port: int) -> list[str]:
        return _serve("-h", "127.0.0.1", "--env-manager", "local", "-p", str(port + 1))(
            model_dir, port
        )

    assert "-p PORT" in _message("07.mlflow_serve_command", other_port)

    def other_model(model_dir: str, port: int) -> list[str]:
        return _serve("-h", "127.0.0.1", "--env-manager", "local")("/elsewhere", port)

    assert "-m MODEL_DIR" in _message("07.mlflow_serve_command", other_model)
    as_text = _message("07.mlflow_serve_command", lambda d, p: f"mlflow models serve -m {d}")
    assert "list of strings" in as_text
    python = _message("07.mlflow_serve_command", lambda d, p: ["python", "-m", "mlflow"])
    assert "starts with mlflow models serve" in python
