"""course_pkg.check: passes right answers, explains wrong ones, and never raises."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pydantic
import pytest
from fastapi import (
    Request,
    Response,
    UploadFile,
)  # module level: FastAPI resolves string annotations here

from course_pkg import check, paths
from course_pkg.artifacts import DEFAULT_ALLOWLIST, ArtifactError, scan_file, verify_package
from course_pkg.artifacts.manifest import SEMVER
from course_pkg.checks import list_checks
from course_pkg.datasets import sha256_file
from grader.specs.nb01 import CHOICES


def solution_answers(notebook: str, names: tuple[str, ...], preamble: str = "") -> dict[str, Any]:
    """The reference answers as solutions/ writes them: run the cells that define ``names``
    (after ``preamble``, the imports earlier cells made) and return those names. Right
    answers come from the course's own solutions, never from course_pkg (that is delegation)."""
    import linecache
    import re

    import nbformat

    scope: dict[str, Any] = {}
    exec(preamble, scope)
    cells = nbformat.read(paths.ROOT / "solutions" / notebook, as_version=4).cells
    for cell in cells:
        if cell.cell_type == "code" and any(
            re.search(rf"^(def|class) {n}\b", cell.source, re.M) for n in names
        ):
            filename = f"{notebook}:{cell.get('id')}"
            # As IPython does for a cell: inspect.getsource works (09's Streamlit check copies
            # the page function into a script).
            linecache.cache[filename] = (
                len(cell.source),
                None,
                cell.source.splitlines(True),
                filename,
            )
            exec(compile(cell.source, filename, "exec"), scope)
    return {name: scope[name] for name in names}


NB00 = solution_answers(
    "00_setup_check.ipynb", ("parse_lock", "port_is_free", "version_mismatches")
)
NB02 = solution_answers("02_serialization_security.ipynb", ("find_globals",), "import pickletools")
NB03 = solution_answers(
    "03_onnx_export.ipynb",
    ("export_pipeline", "parity_report", "convert_clip", "max_opset"),
    "import numpy as np\nimport onnx\nimport onnxruntime as ort\nimport pandas as pd\n"
    "from onnx import TensorProto, helper\n"
    "io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in ('x', 'y')]",
)


@dataclass(frozen=True)
class FromSolution:
    """A reference answer taken from a solution cell when its test runs, not at collection:
    01's cells import torch and TensorFlow, 07's MLflow, and importing those while pytest
    collects broke the in-process Gradio check run in its own process (its captured stderr
    was closed under it: `ValueError: I/O operation on closed file`, then `lost sys.stderr`)."""

    notebook: str
    names: tuple[str, ...]
    name: str

    def get(self) -> Any:
        return _solution_answers_once(self.notebook, self.names)[self.name]


@functools.cache
def _solution_answers_once(notebook: str, names: tuple[str, ...]) -> dict[str, Any]:
    return solution_answers(notebook, names)


NB01 = ("01_model_formats.ipynb", ("torchscript_roundtrip", "saved_model_signature"))
NB07 = ("07_model_servers.ipynb", ("save_mlflow_model", "serve_command"))
NB08 = solution_answers(
    "08_production_readiness.ipynb", ("choose_version", "canary_verdict", "replicas_for")
)
NB09 = solution_answers(
    "09_deploying_in_the_wild.ipynb",
    ("space_readme", "init", "run", "churn_page", "churn_gradio"),
    "import json\nimport gradio as gr\nfrom course_pkg.demos.inference import OnnxModel",
)


def reference_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def parity(a: Any, b: Any, frame: Any) -> dict[str, float]:
    return {
        "max_abs_diff": float(np.abs(a.predict_proba(frame) - b.predict_proba(frame)).max()),
        "labels_agree": float(np.mean(a.predict(frame) == b.predict(frame))),
    }


def write_manifest(files: dict[str, Path], name: str, version: str, seed: int) -> dict[str, Any]:
    if not SEMVER.match(version) or "-" in version or "+" in version:
        raise ValueError(version)
    entries = {k: {"sha256": sha256_file(p), "bytes": p.stat().st_size} for k, p in files.items()}
    return {"name": name, "version": version, "seed": seed, "files": entries}


def version_drift(manifest: dict[str, Any], installed: dict[str, str]) -> list[str]:
    built = manifest["environment"]["libraries"]
    return sorted(lib for lib, v in built.items() if installed.get(lib) != v)


def is_authentic(package: Path, key: Path) -> bool:
    try:
        verify_package(package, key)
    except ArtifactError:
        return False
    return True


def find_malicious(folder: Path) -> list[str]:
    verdicts = [scan_file(p) for p in sorted(folder.iterdir())]
    return [v.path.name for v in verdicts if not v.safe and v.kind != "unknown"]


def _churn_row() -> Any:
    """Notebook 04's schema, generated from the manifest schema like the server's."""
    from pydantic import ConfigDict, create_model

    from course_pkg.serving.schema import _annotation
    from course_pkg.training import churn_input_schema

    fields: dict[str, Any] = {c["name"]: (_annotation(c), ...) for c in churn_input_schema()}
    return create_model("ChurnRow", __config__=ConfigDict(strict=True, extra="forbid"), **fields)


ChurnRow = _churn_row()
ChurnBody = pydantic.create_model(
    "ChurnBody",
    records=(Annotated[list[ChurnRow], pydantic.Field(min_length=1)], ...),  # type: ignore[valid-type]
)


def _answers(predictor: Any, rows: list[Any]) -> list[dict[str, Any]]:
    import pandas as pd

    labels, proba = predictor.predict_both(pd.DataFrame([r.model_dump() for r in rows]))
    return [
        {"label": int(label), "probabilities": {"0": float(p[0]), "1": float(p[1])}}
        for label, p in zip(labels, proba, strict=True)
    ]


def make_app(predictor: Any) -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/predict")
    def predict(body: ChurnBody) -> dict[str, Any]:  # type: ignore[valid-type]
        return {"predictions": _answers(predictor, body.records)}  # type: ignore[attr-defined]

    return app


def make_csv_app(predictor: Any) -> Any:
    import io

    import pandas as pd

    app = make_app(predictor)

    @app.post("/predict.csv")
    async def predict_csv(request: Request) -> Response:
        table = pd.read_csv(io.BytesIO(await request.body()))
        labels, proba = predictor.predict_both(table)
        table["prediction"], table["probability_1"] = labels, proba[:, 1]
        return Response(table.to_csv(index=False), media_type="text/csv")

    return app


def make_image_app(predictor: Any) -> Any:
    import io

    import pandas as pd
    from fastapi import FastAPI, HTTPException
    from PIL import Image, UnidentifiedImageError

    app = FastAPI()

    @app.post("/predict/image")
    def predict_image(file: UploadFile) -> dict[str, Any]:
        data = file.file.read()
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                small = image.convert("L").resize((8, 8), Image.Resampling.BOX)
        except (UnidentifiedImageError, OSError):
            raise HTTPException(415, "not an image: upload a PNG or JPEG") from None
        if width != height or width < 8:
            raise HTTPException(422, f"expected a square image ≥ 8×8 pixels, got {width}×{height}")
        pixels = np.asarray(small, dtype=np.float64) * (16.0 / 255.0)
        labels, proba = predictor.predict_both(pd.DataFrame(pixels.reshape(1, 64)))
        return {
            "label": int(labels[0]),
            "probabilities": {str(d): float(p) for d, p in enumerate(proba[0])},
        }

    return app


def make_flask_app(predictor: Any) -> Any:
    from flask import Flask, jsonify, request
    from pydantic import ValidationError

    app = Flask("reference")

    @app.post("/predict")
    def predict() -> Any:
        try:
            rows = [ChurnRow.model_validate(r) for r in request.get_json()["records"]]
        except ValidationError as error:
            return jsonify(error=[str(e["loc"]) for e in error.errors()]), 422
        return jsonify(predictions=_answers(predictor, rows))

    return app


FIXED_DOCKERFILE = """FROM python:3.11-slim
RUN useradd --system --uid 10001 app
COPY requirements.txt /app/
RUN pip install --no-cache-dir -r /app/requirements.txt
COPY . /app
USER 10001
HEALTHCHECK CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health/ready')"]
CMD ["uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8000"]
"""


def score_in_chunks(predictor: Any, csv_path: Path, out_path: Path, chunk_rows: int) -> int:
    import pandas as pd

    rows = 0
    with open(out_path, "w", newline="") as out:
        for number, chunk in enumerate(pd.read_csv(csv_path, chunksize=chunk_rows)):
            labels, proba = predictor.predict_both(chunk)
            chunk["prediction"], chunk["probability"] = labels, proba[:, 1]
            chunk.to_csv(out, index=False, header=number == 0)
            rows += len(chunk)
    return rows


class Bucket:
    def __init__(self, rate: float, burst: int, now: float = 0.0) -> None:
        self.rate, self.burst, self.tokens, self.updated = rate, burst, float(burst), now

    def allow(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def cache_key(model: str, version: str, row: dict[str, Any]) -> str:
    import json

    normal = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in row.items()}
    return hashlib.sha256(json.dumps([model, version, normal], sort_keys=True).encode()).hexdigest()


def latency_percentiles(values: list[float]) -> dict[str, float]:
    import math

    ordered = sorted(values)
    return {f"p{q}": ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1] for q in (50, 95, 99)}


def to_dataframe_split(frame: Any) -> dict[str, Any]:
    import json

    return {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}


def plan_rollout(name: str, archive: str, version: str, workers: int) -> list[Any]:
    scale = {"min_worker": workers, "max_worker": workers, "synchronous": "true"}
    return [
        ("POST", "/models", {"url": archive, "initial_workers": workers, "synchronous": "true"}),
        ("PUT", f"/models/{name}/{version}/set-default", {}),
        ("PUT", f"/models/{name}/{version}", scale),
    ]


def p99_query(job: str, window: str) -> str:
    buckets = f'rate(course_request_duration_seconds_bucket{{job="{job}"}}[{window}])'
    return f"histogram_quantile(0.99, sum by (le) ({buckets}))"


def digits_handler() -> type:
    import json

    import torch
    from ts.torch_handler.base_handler import BaseHandler

    class DigitsHandler(BaseHandler):  # type: ignore[misc]
        def preprocess(self, requests: list[dict[str, Any]]) -> Any:
            rows = []
            for request in requests:
                body = request.get("body") or request.get("data")
                if isinstance(body, (bytes, bytearray)):
                    body = json.loads(body)
                if len(body["pixels"]) != 64:
                    raise ValueError("expected 64 pixels")
                rows.append(body["pixels"])
            return torch.tensor(rows, dtype=torch.float32)

        def inference(self, data: Any, *args: Any, **kwargs: Any) -> Any:
            with torch.inference_mode():
                return torch.softmax(self.model(data), dim=1)

        def postprocess(self, probabilities: Any) -> list[dict[str, Any]]:
            return [{"label": int(p.argmax()), "probabilities": p.tolist()} for p in probabilities]

    return DigitsHandler


REFERENCE = {
    "00.sha256_file": reference_sha256,
    "00.parse_lock": NB00["parse_lock"],
    "00.port_is_free": NB00["port_is_free"],
    "00.version_mismatches": NB00["version_mismatches"],
    "01.parity": parity,
    "01.write_manifest": write_manifest,
    "01.version_drift": version_drift,
    "01.choose_format": {k: sorted(v)[0] for k, v in CHOICES.items()},
    "01.torchscript": FromSolution(*NB01, "torchscript_roundtrip"),
    "01.saved_model": FromSolution(*NB01, "saved_model_signature"),
    "02.find_globals": NB02["find_globals"],
    "02.allowlist": DEFAULT_ALLOWLIST.with_globals(["__main__.ClipOutliers"]),
    "02.is_authentic": is_authentic,
    "02.find_malicious": find_malicious,
    "03.export_pipeline": NB03["export_pipeline"],
    "03.parity_report": NB03["parity_report"],
    "03.convert_clip": NB03["convert_clip"],
    "03.max_opset": NB03["max_opset"],
    "04.request_schema": ChurnRow,
    "04.predict_endpoint": make_app,
    "04.csv_endpoint": make_csv_app,
    "04.flask_app": make_flask_app,
    "04.image_endpoint": make_image_app,
    "05.chunked_scorer": score_in_chunks,
    "05.token_bucket": Bucket,
    "05.cache_key": cache_key,
    "05.percentiles": latency_percentiles,
    "07.torchserve_handler": digits_handler(),
    "07.rollout_plan": plan_rollout,
    "07.p99_promql": p99_query,
    "07.mlflow_split": to_dataframe_split,
    "07.mlflow_model": FromSolution(*NB07, "save_mlflow_model"),
    "07.mlflow_serve_command": FromSolution(*NB07, "serve_command"),  # mlflow models serve
    "06.write_dockerfile": lambda: (
        'FROM model-server:dev\nCOPY digits/ /models/digits/\nCMD ["/models/digits"]\n'
    ),
    "06.fix_dockerfile": FIXED_DOCKERFILE,
    "08.sticky_split": NB08["choose_version"],
    "08.canary_verdict": NB08["canary_verdict"],
    "08.replicas": NB08["replicas_for"],
    "09.space_readme": NB09["space_readme"],
    "09.azure_score": (NB09["init"], NB09["run"]),
    "09.streamlit_app": NB09["churn_page"],
    "09.gradio_app": NB09["churn_gradio"],
    "06.by_hand": "by_hand_artefacts",  # a fixture: a real image, container and registry push
    "06.choose_tags": lambda v, r, m, release: (
        [r[:12], f"model-{m}"] + ([v, "latest"] if release else [])
    ),
}
# Answers that are not callables (a dict, an Allowlist) cannot be "unfinished" by raising.
CALLABLE_EXERCISES = sorted(
    k for k, v in REFERENCE.items() if callable(v) and not isinstance(v, type)
)


def test_every_registered_check_has_a_reference_answer_here() -> None:
    assert set(list_checks()) == set(REFERENCE)


# gradio's in-process server (the check launches the student's Blocks) leaves its event loop
# and that loop's socket pair unclosed after demo.close(): gradio's, reported at collection
# as an unraisable ResourceWarning; nothing the check or the answer can close.
GRADIO_LEAK = [
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.gradio_leak,  # collected at this test's teardown (tests/conftest.py)
]


# Checks that start a process, a container or a browser of their own (through fixtures taken
# inside the test, which conftest's automatic marking cannot see): `make test-fast` skips them.
STARTS_SOMETHING = {
    "07.mlflow_serve_command": (pytest.mark.integration,),  # mlflow models serve
    "06.write_dockerfile": (pytest.mark.integration, pytest.mark.docker),  # builds and runs
    "06.by_hand": (pytest.mark.integration, pytest.mark.docker),  # an image, a registry
    "09.streamlit_app": (pytest.mark.integration,),  # streamlit run + headless Chromium
}


def _marks(exercise: str) -> Any:
    if exercise == "09.gradio_app":
        return pytest.param(exercise, marks=GRADIO_LEAK)
    if exercise in STARTS_SOMETHING:
        return pytest.param(exercise, marks=STARTS_SOMETHING[exercise])
    return exercise


@pytest.mark.parametrize("exercise", [_marks(e) for e in sorted(REFERENCE)])
def test_reference_answers_pass(
    exercise: str, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    if exercise == "06.write_dockerfile":  # this check builds on model-server:dev and runs it
        request.getfixturevalue("server_dev_image")
    if exercise in ("09.streamlit_app", "09.gradio_app"):  # these drive a headless Chromium
        request.getfixturevalue("browser")
    answer = REFERENCE[exercise]
    if isinstance(answer, FromSolution):
        answer = answer.get()
    if exercise == "06.by_hand":
        answer = request.getfixturevalue(answer)
    result = check(exercise, answer)
    assert result.passed, result.message
    assert capsys.readouterr().out.startswith(f"✅ {exercise}:")


def _unfinished(*args: object) -> object:
    raise NotImplementedError


def _unfinished_converter(scope: object, operator: object, container: object) -> None:
    raise NotImplementedError  # skl2onnx insists a converter takes exactly these three


@pytest.mark.parametrize("exercise", CALLABLE_EXERCISES)
def test_unfinished_exercise_is_reported_not_raised(exercise: str) -> None:
    answer = _unfinished_converter if exercise == "03.convert_clip" else _unfinished
    result = check(exercise, answer, quiet=True)
    assert not result
    assert "not done yet" in result.message


def test_crash_in_student_code_is_reported_with_its_type() -> None:
    def crashes(path: Path) -> str:
        return {}["missing"]  # type: ignore[no-any-return]

    result = check("00.sha256_file", crashes, quiet=True)
    assert not result.passed
    assert "KeyError" in result.message and "crashes" in result.message


def test_wrong_answers_get_specific_hints() -> None:
    digest_bytes = check(
        "00.sha256_file", lambda p: hashlib.sha256(b"").hexdigest()[:10], quiet=True
    )
    assert "hexdigest" in digest_bytes.message

    not_callable = check("00.parse_lock", {"numpy": "2.4.6"}, quiet=True)
    assert "pass the function itself" in not_callable.message

    loose = check("00.version_mismatches", lambda locked, installed: [], quiet=True)
    assert "not installed is a mismatch" in loose.message

    always_free = check("00.port_is_free", lambda port, host="127.0.0.1": True, quiet=True)
    assert "has a listener" in always_free.message


def test_parse_lock_that_keeps_raw_names_is_told_to_normalise() -> None:
    def raw_names(text: str) -> dict[str, str]:
        pins = NB00["parse_lock"](text)
        return {
            ("Typing_Extensions" if k == "typing-extensions" else k): v for k, v in pins.items()
        }

    result = check("00.parse_lock", raw_names, quiet=True)
    assert not result.passed
    assert "normalised" in result.message or "not packages" in result.message


def test_unknown_exercise_lists_known_ids() -> None:
    result = check("00.nope", print, quiet=True)
    assert not result.passed
    assert "00.sha256_file" in result.message


def test_check_survives_base_exceptions_from_student_code() -> None:
    def exits(path: Path) -> str:
        raise SystemExit(3)

    result = check("00.sha256_file", exits, quiet=True)
    assert not result.passed and "SystemExit" in result.message


def test_result_is_shown_once_in_jupyter(capsys: pytest.CaptureFixture[str]) -> None:
    result = check("00.parse_lock", NB00["parse_lock"])
    result._ipython_display_()
    assert capsys.readouterr().out.count("00.parse_lock") == 1


def test_wrong_format_choice_and_unsafe_allowlist_get_hints() -> None:
    choices = {k: sorted(v)[0] for k, v in CHOICES.items()}
    wrong = check("01.choose_format", {**choices, "untrusted_download": "pickle"}, quiet=True)
    assert not wrong and "cannot run code" in wrong.message
    whole_module = DEFAULT_ALLOWLIST.with_globals(["__main__.ClipOutliers", "__main__.Evil"])
    too_wide = check("02.allowlist", whole_module, quiet=True)
    assert not too_wide and "exact class" in too_wide.message


def test_find_malicious_that_loads_files_is_caught() -> None:
    import pickle

    def loads_everything(folder: Path) -> list[str]:
        for path in folder.iterdir():
            try:
                pickle.loads(path.read_bytes())
            except Exception:
                continue
        return []

    result = check("02.find_malicious", loads_everything, quiet=True)
    assert not result.passed and "ran a payload" in result.message


def test_batch_and_realtime_mistakes_get_specific_hints() -> None:
    import pandas as pd

    def whole_file(predictor: Any, csv_path: Path, out_path: Path, chunk_rows: int) -> int:
        table = pd.read_csv(csv_path)
        labels, proba = predictor.predict_both(table)
        table["prediction"], table["probability"] = labels, proba[:, 1]
        table.to_csv(out_path, index=False)
        return len(table)

    assert (
        "no model call may get more" in check("05.chunked_scorer", whole_file, quiet=True).message
    )

    def header_every_chunk(predictor: Any, csv_path: Path, out_path: Path, chunk_rows: int) -> int:
        rows = 0
        with open(out_path, "w") as out:
            for chunk in pd.read_csv(csv_path, chunksize=chunk_rows):
                labels, proba = predictor.predict_both(chunk)
                chunk["prediction"], chunk["probability"] = labels, proba[:, 1]
                chunk.to_csv(out, index=False)
                rows += len(chunk)
        return rows

    assert "header" in check("05.chunked_scorer", header_every_chunk, quiet=True).message

    class Uncapped(Bucket):
        def allow(self, now: float) -> bool:
            self.tokens += (now - self.updated) * self.rate
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False

    assert "never above burst" in check("05.token_bucket", Uncapped, quiet=True).message
    naive = check("05.cache_key", lambda model, version, row: str(row), quiet=True)
    assert "another order" in naive.message
    unversioned = check("05.cache_key", lambda m, v, row: cache_key(m, "", row), quiet=True)
    assert "another model version" in unversioned.message
    interpolated = check(
        "05.percentiles",
        lambda values: {f"p{q}": float(np.percentile(values, q)) for q in (50, 95, 99)},
        quiet=True,
    )
    assert "nearest rank" in interpolated.message

    def sorts_in_place(values: list[float]) -> dict[str, float]:
        values.sort()
        return latency_percentiles(values)

    assert "copy" in check("05.percentiles", sorts_in_place, quiet=True).message


def test_model_server_mistakes_get_specific_hints() -> None:
    unsummed = check(
        "07.p99_promql",
        lambda job, window: (
            f'histogram_quantile(0.99, rate(course_request_duration_seconds_bucket{{job="{job}"}}'
            f"[{window}]))"
        ),
        quiet=True,
    )
    assert "sum by (le)" in unsummed.message
    median = check("07.p99_promql", lambda j, w: p99_query(j, w).replace("0.99", "0.5"), quiet=True)
    assert "histogram_quantile(0.99" in median.message
    swapped = check(
        "07.rollout_plan", lambda *case: list(reversed(plan_rollout(*case))), quiet=True
    )
    assert "step 1 (register)" in swapped.message
    numpy_values = check(
        "07.mlflow_split",
        lambda frame: {"dataframe_split": {"columns": list(frame.columns), "data": frame.values}},
        quiet=True,
    )
    assert "JSON-serialisable" in numpy_values.message

    class NoBatches(digits_handler()):  # type: ignore[misc]
        def postprocess(self, probabilities: Any) -> list[dict[str, Any]]:
            return super().postprocess(probabilities)[:1]  # type: ignore[no-any-return]

    assert "one output per request" in check("07.torchserve_handler", NoBatches, quiet=True).message
