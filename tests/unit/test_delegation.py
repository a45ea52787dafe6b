"""Handing a self-check the course's own implementation is caught, however it is wrapped.

For every registered exercise and each of its forbidden references: the reference itself,
the reference through ``functools.partial``, and a ``def`` that calls it all get ❌ with a
message naming it — never an exception. Libraries an exercise tells students to use stay
allowed (test_checks.py: ``scan_file`` in 02.find_malicious, ``verify_package`` in
02.is_authentic pass).
"""

from __future__ import annotations

import functools
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from course_pkg import check
from course_pkg.checks import list_checks
from course_pkg.checks._delegation import Watch, identity_hits, resolve, run_probe
from course_pkg.checks._registry import FORBIDDEN
from grader.samples import DELEGATIONS

list_checks()  # import every notebook's checks, so FORBIDDEN is complete
CASES = [(exercise, name) for exercise, names in sorted(FORBIDDEN.items()) for name in names]


def _handler_class() -> type:
    scope: dict[str, Any] = {}
    exec(resolve("course_pkg.servers.torchserve.DIGITS_HANDLER"), scope)
    return next(v for k, v in scope.items() if k.endswith("Handler") and k != "BaseHandler")


def _choose(weights: dict[str, float], client: str, model: str) -> str:
    from course_pkg.serving.gateway import bucket, pick

    return pick(sorted(weights.items()), bucket(model, client))


def _space(title: str, sdk_version: str) -> str:
    from course_pkg.deploy_folders import build_space

    out = build_space(Path(tempfile.mkdtemp()), title, sdk_version)
    return (out / "README.md").read_text()


def _compare(pipeline: Any, model: Any, frame: Any) -> dict[str, float]:
    from course_pkg.onnx_export import OnnxPredictor
    from course_pkg.onnx_export.parity import compare_outputs

    onnx = OnnxPredictor(model)
    report = compare_outputs(
        onnx.predict(frame),
        onnx.predict_proba(frame),
        pipeline.predict(frame),
        pipeline.predict_proba(frame),
    )
    return {"label_agreement": report.label_agreement, "max_abs_diff": report.max_abs_proba_diff}


@functools.cache
def _delegations(assignment: str) -> dict[str, Any]:
    """The names ``grader.samples.DELEGATIONS[assignment]`` defines: the delegating cell the
    grading tests append to a submission, run here as-is (one source for both)."""
    scope: dict[str, Any] = {"__name__": f"delegation_{assignment}"}
    exec(DELEGATIONS[assignment], scope)
    return scope


def _delegating(assignment: str, name: str) -> Any:
    return _delegations(assignment)[name]


def _chunks_via_tables(predictor: Any, csv_path: Path, out_path: Path, chunk_rows: int) -> int:
    """05's delegating scorer over ``read_tables`` (DELEGATIONS uses ``read_chunks``)."""
    from course_pkg.batch import reading

    rows = 0
    chunks = (t.to_pandas() for t in reading.read_tables(csv_path, chunk_rows))
    for i, chunk in enumerate(chunks):
        labels, proba = predictor.predict_both(chunk)
        chunk = chunk.assign(prediction=labels, probability=proba[:, 1])
        chunk.to_csv(out_path, mode="w" if i == 0 else "a", header=i == 0, index=False)
        rows += len(chunk)
    return rows


def _canonical(model: str, version: str, row: dict[str, Any]) -> bytes:
    from course_pkg.serving.limits import canonical_row

    return f"{model}\0{version}\0".encode() + canonical_row(row)


def _signature(model: Any, path: Path) -> Any:
    from course_pkg.artifacts.deep import saved_model_signatures

    model.export(str(path), verbose=False)
    return saved_model_signatures(path)["serving_default"]


def _save_mlflow(pipeline: Any, example: Any, path: Path) -> Any:
    from course_pkg.servers.mlflow_serve import save_churn_mlflow

    # an empty folder as the package: the reference is entered, then fails fast (no training)
    return save_churn_mlflow(path, Path(tempfile.mkdtemp()))


def _serve_command(model_dir: str, port: int) -> list[str]:
    from course_pkg.servers.mlflow_serve import MlflowServer

    # cut short, so the check refuses the command instead of starting a server
    return list(MlflowServer(model_dir, port=port).command)[:3]


# A def that calls the reference the way the exercise's signature allows (where calling it
# with the answer's own arguments would fail before reaching it).
ADAPTERS: dict[tuple[str, str], Callable[..., Any]] = {
    ("03.parity_report", "course_pkg.onnx_export.parity.compare_outputs"): _compare,
    ("08.sticky_split", "course_pkg.serving.gateway.bucket"): _choose,
    ("09.space_readme", "course_pkg.deploy_folders.build_space"): _space,
    ("05.chunked_scorer", "course_pkg.batch.reading.read_tables"): _chunks_via_tables,
    ("05.cache_key", "course_pkg.serving.limits.canonical_row"): _canonical,
    ("01.saved_model", "course_pkg.artifacts.deep.saved_model_signatures"): _signature,
    ("07.mlflow_model", "course_pkg.servers.mlflow_serve.save_churn_mlflow"): _save_mlflow,
    ("07.mlflow_serve_command", "course_pkg.servers.mlflow_serve.MlflowServer"): _serve_command,
}

# The same, taken from the delegating cells of grader.samples.DELEGATIONS, run as they are:
# (exercise, reference) → (assignment, the name that cell defines).
FROM_DELEGATIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("01.write_manifest", "course_pkg.artifacts.manifest.package_model"): ("01", "write_manifest"),
    ("01.version_drift", "course_pkg.artifacts.manifest.version_mismatches"): (
        "01",
        "version_drift",
    ),
    ("02.find_globals", "course_pkg.artifacts.pickle_scan.scan_bytes"): ("02", "find_globals"),
    ("02.find_globals", "course_pkg.artifacts.pickle_scan._SymbolicUnpickler"): (
        "02",
        "find_globals",
    ),
    ("03.parity_report", "course_pkg.onnx_export.parity.check_parity"): ("03", "parity_report"),
    ("08.sticky_split", "course_pkg.serving.gateway.Routing"): ("08", "choose_version"),
    ("08.replicas", "course_pkg.kubernetes.plan_capacity"): ("08", "replicas_for"),
    ("09.space_readme", "course_pkg.deploy_folders.space_header"): ("09", "space_readme"),
    ("04.predict_endpoint", "course_pkg.serving.app.create_app"): ("04", "make_app"),
    ("04.csv_endpoint", "course_pkg.serving.app.create_app"): ("04", "make_app"),
    ("05.chunked_scorer", "course_pkg.batch.reading.read_chunks"): ("05", "score_in_chunks"),
    ("05.token_bucket", "course_pkg.serving.limits.TokenBucket"): ("05", "TokenBucket"),
    ("05.cache_key", "course_pkg.serving.limits.PredictionCache.key"): ("05", "cache_key"),
    ("05.percentiles", "course_pkg.loadtest.LoadResult.percentile"): ("05", "latency_percentiles"),
    ("06.choose_tags", "course_pkg.containers.tags_for"): ("06", "choose_tags"),
}


def _as_answer(exercise: str, name: str, how: str) -> Any:
    """The reference handed in ``how``: directly, through functools.partial, or in a def."""
    target = resolve(name)
    if exercise == "09.azure_score":  # the answer is the pair (init, run)
        pair = (resolve("course_pkg.demos.azureml_score.init"),)
        pair += (resolve("course_pkg.demos.azureml_score.run"),)
        if how == "directly":
            return pair
        if how == "partial":
            return tuple(functools.partial(f) for f in pair)
        init, run = pair
        return (lambda: init(), lambda body: run(body))
    if isinstance(target, str):  # a reference shipped as source text (TorchServe's handler)
        handler = _handler_class()
        return handler if how == "directly" else type("Mine", (handler,), {})
    if how == "directly":
        return target
    if how == "partial":
        return functools.partial(target)
    adapter = ADAPTERS.get((exercise, name))
    if adapter is not None:
        return adapter
    if (exercise, name) in FROM_DELEGATIONS:
        return _delegating(*FROM_DELEGATIONS[exercise, name])

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return target(*args, **kwargs)

    return wrapper


def test_every_graded_exercise_with_a_course_implementation_forbids_it() -> None:
    for exercise in ("00.parse_lock", "00.sha256_file", "08.canary_verdict", "08.replicas"):
        assert FORBIDDEN[exercise], exercise
    for name in (n for names in FORBIDDEN.values() for n in names):
        assert resolve(name) is not None, f"{name} does not exist (renamed?)"


# Every way of handing a reference in; a reference shipped as source text (a handler) cannot
# be partial-applied, so it is handed in directly and inside a def only.
# gradio's in-process server (the check launches the student's Blocks) leaves its event loop
# and that loop's socket pair unclosed after demo.close(): gradio's, reported at collection
# as an unraisable ResourceWarning; nothing the check or the answer can close.
GRADIO_LEAK = [
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.gradio_leak,  # collected at this test's teardown (tests/conftest.py)
]

HANDED_IN = [
    (exercise, name, how)
    for exercise, name in CASES
    for how in ("directly", "partial", "def")
    if not (how == "partial" and isinstance(resolve(name), str))
]


@pytest.mark.parametrize(
    ("exercise", "name", "how"),
    [
        pytest.param(*case, marks=GRADIO_LEAK) if case[0] == "09.gradio_app" else case
        for case in HANDED_IN
    ],
    ids=[f"{e}-{n}-{h}" for e, n, h in HANDED_IN],
)
def test_handing_in_the_reference_fails_with_a_plain_message(
    exercise: str, name: str, how: str
) -> None:
    result = check(exercise, _as_answer(exercise, name, how), quiet=True)
    assert not result.passed
    assert "the exercise is to write it" in result.message, result.message
    if exercise != "09.azure_score":
        assert name in result.message, result.message


def test_identity_sees_through_bound_methods_staticmethods_and_wrapped() -> None:
    from course_pkg import preflight

    class Holder:
        parse = staticmethod(preflight.parse_lock)

        def method(self, text: str) -> dict[str, str]:
            return preflight.parse_lock(text)

    @functools.wraps(preflight.parse_lock)
    def decorated(text: str) -> dict[str, str]:
        return {}

    forbidden = ("course_pkg.preflight.parse_lock",)
    assert identity_hits(Holder.parse, forbidden) == list(forbidden)
    assert identity_hits(decorated, forbidden) == list(forbidden)  # __wrapped__
    assert identity_hits(functools.partial(functools.partial(preflight.parse_lock)), forbidden)
    assert not identity_hits(Holder().method, forbidden)  # it *calls* it: the profiler sees that
    assert check("00.parse_lock", Holder().method, quiet=True).message.startswith(
        "your answer calls course_pkg.preflight.parse_lock"
    )


def test_a_reference_called_from_a_thread_is_seen() -> None:
    from course_pkg import preflight

    def parse_lock(text: str) -> dict[str, str]:
        out: dict[str, dict[str, str]] = {}
        worker = threading.Thread(target=lambda: out.update(r=preflight.parse_lock(text)))
        worker.start()
        worker.join()
        return out["r"]

    result = check("00.parse_lock", parse_lock, quiet=True)
    assert not result.passed and "calls course_pkg.preflight.parse_lock" in result.message


def test_removing_the_profiler_is_reported_not_trusted() -> None:
    from course_pkg import preflight

    def parse_lock(text: str) -> dict[str, str]:
        sys.setprofile(None)
        return preflight.parse_lock(text)

    result = check("00.parse_lock", parse_lock, quiet=True)
    assert not result.passed
    assert "removed or replaced the profile hook" in result.message


def test_the_check_own_oracle_calls_are_not_the_students() -> None:
    # 00.parse_lock's check calls preflight.parse_lock itself to know the answer
    watch = Watch(("course_pkg.preflight.parse_lock",))
    guarded = watch.guard(lambda text: {})
    from course_pkg import preflight

    preflight.parse_lock("a==1\n")
    guarded("a==1\n")
    assert watch.hits == []
    assert sys.getprofile() is None  # restored


def test_probe_wrapper_reports_delegation_and_restores_the_answer() -> None:
    from course_pkg import preflight

    def parse_lock(text: str) -> dict[str, str]:
        return preflight.parse_lock(text)

    namespace: dict[str, Any] = {"parse_lock": parse_lock}
    result = run_probe(
        lambda: namespace["parse_lock"]("b==2\n"),
        namespace,
        ["parse_lock"],
        ["course_pkg.preflight.parse_lock"],
    )
    assert result == {"value": {"b": "2"}, "delegated": ["course_pkg.preflight.parse_lock"]}
    assert namespace["parse_lock"] is parse_lock


def test_a_check_table_cannot_be_looked_up_for_the_answer() -> None:
    # the cases 08.canary_verdict probes are importable; their expected verdicts are not
    from course_pkg.checks.nb08 import VERDICT_CASES

    def canary_verdict(stable: dict[str, float], canary: dict[str, float]) -> Any:
        return next(c[2:] for c in VERDICT_CASES if (c[0], c[1]) == (stable, canary))

    assert not check("08.canary_verdict", canary_verdict, quiet=True).passed
    assert all(len(case) == 3 and isinstance(case[2], str) for case in VERDICT_CASES)


def test_adapters_taken_from_the_delegating_cells_are_real_cases() -> None:
    for (exercise, name), (assignment, defined) in FROM_DELEGATIONS.items():
        assert (exercise, name) in CASES, f"{exercise} no longer forbids {name}"
        assert callable(_delegating(assignment, defined)), f"DELEGATIONS[{assignment}]: {defined}"
    assert not set(FROM_DELEGATIONS) & set(ADAPTERS)  # one adapter per case
