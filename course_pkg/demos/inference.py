"""One interface for the demos: a packaged ONNX model on disk, or the reference server.

    model = OnnxModel("build/churn")                  # verifies sha256s, then onnxruntime
    model = ServerModel("http://127.0.0.1:8000", "churn")
    model.predict_row({"contract": "one-year", ...})  # → Prediction(label, probabilities, …)
    model.predict_image(png_bytes)                    # digits: any PNG/JPEG of a digit

Standalone on purpose (numpy, onnxruntime, Pillow and the standard library): this file is
copied into the Hugging Face Space and the Azure ML deployment folders, where ``course_pkg``
is not installed. ``course_pkg.datasets.digits`` imports ``image_to_features`` from here, so
the server, the demos and the Space turn an image into features the same way.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

NUMERIC = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}


def image_to_features(image: Path | bytes) -> np.ndarray:
    """A PNG/JPEG of any size → the (1, 64) row a digits model takes (8×8 grey, 0-16)."""
    from PIL import Image

    source = io.BytesIO(image) if isinstance(image, bytes) else image
    with Image.open(source) as opened:
        small = opened.convert("L").resize((8, 8), Image.Resampling.BOX)
        pixels = np.asarray(small, dtype=np.float64)
    return (pixels * (16.0 / 255.0)).reshape(1, 64)


@dataclass(frozen=True)
class Prediction:
    label: Any
    probabilities: dict[str, float]
    model: str
    version: str
    source: str  # "onnx" or the server's URL

    @property
    def confidence(self) -> float:
        return self.probabilities.get(str(self.label), max(self.probabilities.values()))

    def headline(self) -> str:
        return f"{self.model} {self.version} says {self.label} ({self.confidence:.0%})"


class PredictionError(RuntimeError):
    """Bad input or a failed call, with a message fit to show the user."""


class OnnxModel:
    """A course package (``manifest.json`` + ONNX file) run with onnxruntime, in process."""

    def __init__(self, package: str | Path) -> None:
        import onnxruntime as ort

        self.path = Path(package)
        self.manifest: dict[str, Any] = json.loads((self.path / "manifest.json").read_text())
        model_file = self.manifest["model_file"]
        if not model_file.endswith(".onnx"):
            raise PredictionError(f"{self.path}: the package's model is not ONNX ({model_file})")
        for name, entry in self.manifest["files"].items():  # verify before loading anything
            if (self.path / name).exists() and _sha256(self.path / name) != entry["sha256"]:
                raise PredictionError(f"{self.path / name}: sha256 does not match the manifest")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(self.path / model_file), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = {i.name: i.type for i in self.session.get_inputs()}
        self.name = str(self.manifest["name"])
        self.version = str(self.manifest["version"])
        classes = self.manifest.get("output_schema", {}).get("probabilities", {}).get("classes")
        self.classes = [str(c) for c in classes] if classes else None

    @property
    def schema(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("input_schema") or [])

    def form(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """(input schema, one example row): what a demo's form is built from."""
        examples = self.manifest.get("extra", {}).get("input_example") or [{}]
        return self.schema, dict(examples[0])

    def _answer(self, feeds: dict[str, np.ndarray]) -> Prediction:
        labels, proba = self.session.run(None, feeds)[:2]
        row = np.asarray(proba)[0].tolist()
        classes = self.classes or [str(i) for i in range(len(row))]
        label = np.asarray(labels).reshape(-1)[0].item()
        return Prediction(
            label, dict(zip(classes, row, strict=True)), self.name, self.version, "onnx"
        )

    def predict_row(self, row: dict[str, Any]) -> Prediction:
        feeds = {}
        for name, kind in self.inputs.items():
            if name not in row:
                raise PredictionError(f"missing field {name!r}")
            value = row[name]
            try:
                if kind == "tensor(string)":
                    feeds[name] = np.array([[str(value)]], dtype=object)
                else:
                    feeds[name] = np.array([[value]], dtype=NUMERIC[kind])
            except (TypeError, ValueError):
                raise PredictionError(f"{name}: {value!r} is not a number") from None
        return self._answer(feeds)

    def predict_image(self, image: bytes) -> Prediction:
        (name, kind), *rest = self.inputs.items()
        if rest:
            raise PredictionError(f"{self.name} takes table rows, not images")
        try:
            features = image_to_features(image)
        except Exception as error:  # Pillow: not an image, truncated, …
            raise PredictionError(f"not a readable PNG/JPEG image ({error})") from None
        return self._answer({name: features.astype(NUMERIC.get(kind, np.float32))})


class ServerModel:
    """The reference server's native API (``/v1/models/{name}/predict``) over HTTP."""

    def __init__(self, url: str, name: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.name = name
        self.timeout = timeout

    def _post(self, body: bytes, content_type: str) -> Prediction:
        request = urllib.request.Request(
            f"{self.url}/v1/models/{self.name}/predict",
            data=body,
            headers={"content-type": content_type, "accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            try:
                message = json.loads(error.read())["error"]["message"]
            except Exception:
                message = error.reason
            raise PredictionError(f"the server said {error.code}: {message}") from None
        except (urllib.error.URLError, TimeoutError) as error:
            raise PredictionError(f"cannot reach the model server at {self.url}: {error}") from None
        first = answer["predictions"][0]
        return Prediction(
            first["label"], first["probabilities"], answer["model"], answer["version"], self.url
        )

    def _describe(self) -> dict[str, Any]:
        url = f"{self.url}/v1/models/{self.name}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                described: dict[str, Any] = json.loads(response.read())
                return described
        except (urllib.error.URLError, TimeoutError) as error:
            raise PredictionError(f"cannot reach the model server at {self.url}: {error}") from None

    @property
    def schema(self) -> list[dict[str, Any]]:
        """The model's input schema, from ``GET /v1/models/{name}``."""
        return self.form()[0]

    def form(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """(input schema, one example row), from one ``GET /v1/models/{name}``."""
        described = self._describe()
        examples = described.get("input_example") or [{}]
        return list(described.get("input_schema") or []), dict(examples[0])

    def predict_row(self, row: dict[str, Any]) -> Prediction:
        return self._post(json.dumps({"records": [row]}).encode(), "application/json")

    def predict_image(self, image: bytes) -> Prediction:
        return self._post(image, "image/png")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_from_env(kind: str, default_package: str | Path | None = None) -> OnnxModel | ServerModel:
    """``COURSE_DEMO_SERVER`` set: the server; else the package in ``COURSE_DEMO_<KIND>``
    (``COURSE_DEMO_CHURN``, ``COURSE_DEMO_DIGITS``) or ``default_package``."""
    server = os.environ.get("COURSE_DEMO_SERVER")
    if server:
        return ServerModel(server, kind)
    package = os.environ.get(f"COURSE_DEMO_{kind.upper()}") or default_package
    if package is None:
        raise PredictionError(
            f"set COURSE_DEMO_SERVER (a server URL) or COURSE_DEMO_{kind.upper()} (a package)"
        )
    return OnnxModel(package)
