"""An Azure ML online-endpoint scoring script: ``init()`` once per worker, ``run()`` per call.

Azure ML (and Microsoft's local server, ``azmlinfsrv --entry_script score.py``) imports the
entry script, calls ``init()`` once, then ``run(raw_data)`` with each ``POST /score`` body as
a string; a returned dict becomes the JSON answer. The registered model is mounted under
``AZUREML_MODEL_DIR`` (a folder named after the model inside it, in the cloud).

Request: ``{"data": [{"tenure_months": 12, ...}, ...]}`` (at most ``MAX_ROWS`` rows).
Answer: ``{"model", "version", "predictions": [{"label", "probabilities"}, ...]}``.
Bad input: a 400 whose body says what was wrong, never a 500 with a traceback.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from .inference import OnnxModel, PredictionError

LOG = logging.getLogger("score")
MAX_ROWS = 1_000
model: OnnxModel | None = None


def find_package(root: Path) -> Path:
    """The package folder: ``root`` itself or the one folder below it with a manifest."""
    if (root / "manifest.json").is_file():
        return root
    found = sorted(p.parent for p in root.glob("*/manifest.json"))
    if len(found) != 1:
        raise FileNotFoundError(f"expected one model package under {root}, found {len(found)}")
    return found[0]


def init() -> None:
    global model
    root = Path(os.environ.get("AZUREML_MODEL_DIR", "model"))
    model = OnnxModel(find_package(root))  # verifies every file's sha256 first
    LOG.info("loaded %s %s from %s", model.name, model.version, model.path)


def _bad_request(message: str) -> Any:
    try:  # Microsoft's response type: sets the status code on the server it runs under
        from azureml_inference_server_http.api.aml_response import AMLResponse
    except ImportError:  # outside the server (tests, notebooks): a plain error dict
        return {"error": message, "status": 400}
    return AMLResponse({"error": message}, 400, json_str=True)


def run(raw_data: str | bytes) -> Any:
    if model is None:
        raise RuntimeError("init() has not run")
    try:
        body = json.loads(raw_data)
    except ValueError as error:
        return _bad_request(f"the body is not JSON: {error}")
    rows = body.get("data") if isinstance(body, dict) else None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        return _bad_request('expected {"data": [{...}, ...]}: a non-empty list of rows')
    if len(rows) > MAX_ROWS:
        return _bad_request(f"{len(rows)} rows; send at most {MAX_ROWS} per call")
    try:
        predictions = [model.predict_row(row) for row in rows]
    except PredictionError as error:
        return _bad_request(str(error))
    return {
        "model": model.name,
        "version": model.version,
        "predictions": [{"label": p.label, "probabilities": p.probabilities} for p in predictions],
    }
