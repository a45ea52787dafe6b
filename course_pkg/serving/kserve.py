"""KServe V2 / Open Inference Protocol (what Triton, KServe, Seldon MLServer speak).

https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/ — health,
server and model metadata, and ``POST /v2/models/{name}[/versions/{v}]/infer``.

Tabular models take one input tensor per column (shape ``[n]`` or ``[n, 1]``; BYTES for
text, FP64/FP32/INT64 for numbers); the digits model takes ``pixels`` FP32 ``[n, 64]``.
Outputs: ``label`` (INT64 ``[n]``) and ``probabilities`` (FP32 ``[n, classes]``).
Rows are validated by the same schema as the native API. The binary tensor data extension
(``Inference-Header-Content-Length``) is supported both ways, because ``tritonclient``
uses it by default. Errors are ``{"error": "…"}``.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request, Response

from course_pkg.serving import openapi_operations
from course_pkg.serving.endpoints import Endpoint
from course_pkg.serving.errors import ApiError
from course_pkg.serving.http import (
    admit,
    json_response,
    parse_json,
    plain_error,
    registry_of,
    run_model,
    serving_model,
    settings_of,
)
from course_pkg.serving.openapi_schemas import Components, Schema
from course_pkg.serving.registry import ServedModel
from course_pkg.version import __version__

router = APIRouter(prefix="/v2", tags=["kserve v2 protocol"])

ONNX_TO_V2 = {
    "tensor(string)": "BYTES",
    "tensor(double)": "FP64",
    "tensor(float)": "FP32",
    "tensor(int64)": "INT64",
}
NUMPY = {
    "FP64": "<f8",
    "FP32": "<f4",
    "FP16": "<f2",
    "INT64": "<i8",
    "INT32": "<i4",
    "INT16": "<i2",
    "INT8": "i1",
    "UINT8": "u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "BOOL": "?",
}
HEADER = "inference-header-content-length"


def _bad(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


@router.get("", summary="Server metadata")
async def server_metadata() -> Response:
    return json_response(
        {"name": "course-pkg", "version": __version__, "extensions": ["binary_tensor_data"]}
    )


@router.get("/health/live", summary="Server live")
async def live() -> Response:
    return json_response({"live": True})


@router.get("/health/ready", summary="Server ready")
async def ready(request: Request) -> Response:
    is_ready = request.app.state.registry.ready
    return json_response({"ready": is_ready}, 200 if is_ready else 503)


def _datatype(onnx_type: str, schema_dtype: str) -> str:
    if onnx_type != "tensor(string)" and schema_dtype.startswith("int"):
        return "INT64"
    return ONNX_TO_V2[onnx_type]


def _metadata(served: ServedModel, versions: list[str]) -> dict[str, Any]:
    if served.predictor.tensor_input is not None:
        name, width = served.predictor.tensor_input
        inputs = [{"name": name, "datatype": "FP32", "shape": [-1, width]}]
    else:
        # The datatype a client should send: the *schema's* (an int column takes INT64,
        # validated strictly as an integer), not the graph's (every number is FP64 there).
        declared = {c["name"]: str(c.get("dtype", "")) for c in served.manifest["input_schema"]}
        inputs = [
            {"name": n, "datatype": _datatype(t, declared.get(n, "")), "shape": [-1, 1]}
            for n, t in served.predictor.input_types.items()
        ]
    classes = len(served.classes) or -1
    return {
        "name": served.name,
        "versions": versions,
        "platform": "onnxruntime_onnx",
        "inputs": inputs,
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, classes]},
        ],
    }


async def _guard(request: Request, handler: Any) -> Response:
    try:
        response: Response = await handler()
        return response
    except ApiError as error:
        request.state.error_code = error.code
        return plain_error(error)


@router.get("/models/{name}", summary="Model metadata")
async def model_metadata(request: Request, name: str) -> Response:
    async def run() -> Response:
        registry = registry_of(request)
        return json_response(_metadata(registry.get(name), registry.versions(name)))

    return await _guard(request, run)


@router.get("/models/{name}/versions/{version}", summary="Model version metadata")
async def version_metadata(request: Request, name: str, version: str) -> Response:
    async def run() -> Response:
        served = registry_of(request).get(name, version)
        return json_response(_metadata(served, [served.version]))

    return await _guard(request, run)


@router.get("/models/{name}/ready", summary="Model ready")
@router.get("/models/{name}/versions/{version}/ready", summary="Model version ready")
async def model_ready(request: Request, name: str, version: str | None = None) -> Response:
    async def run() -> Response:
        served = registry_of(request).get(name, version)
        return json_response({"name": served.name, "ready": True})

    return await _guard(request, run)


def _decode_bytes(raw: bytes) -> list[str]:
    values, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise _bad("truncated BYTES tensor")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise _bad("truncated BYTES tensor")
        try:
            values.append(raw[offset : offset + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise _bad("BYTES tensor element is not UTF-8 text") from None
        offset += length
    return values


def _encode_bytes(values: list[Any]) -> bytes:
    out = bytearray()
    for value in values:
        data = str(value).encode("utf-8")
        out += struct.pack("<I", len(data)) + data
    return bytes(out)


def _parse_request(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    if header_length is None:
        json_part, binary = body, b""
    else:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise _bad(f"{HEADER} is not a valid length for this body")
        json_part, binary = body[: int(header_length)], body[int(header_length) :]
    request = parse_json(json_part)
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise _bad("an inference request needs an 'inputs' list")
    if not isinstance(request.get("parameters") or {}, dict):
        raise _bad("the request's 'parameters' must be an object")
    return request, binary


def _tensor_values(tensor: dict[str, Any], binary: bytes, offset: int) -> tuple[list[Any], int]:
    """Flat values of one input tensor (JSON 'data' or binary), and the new binary offset."""
    datatype = str(tensor.get("datatype", "")).upper()
    parameters = tensor.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise _bad(f"input {tensor.get('name')!r}: 'parameters' must be an object")
    size = parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise _bad(f"input {tensor.get('name')!r}: binary_data_size beyond the body")
        raw = binary[offset : offset + size]
        offset += size
        if datatype == "BYTES":
            return _decode_bytes(raw), offset
        if datatype not in NUMPY:
            raise _bad(f"input {tensor.get('name')!r}: unsupported datatype {datatype}")
        if len(raw) % np.dtype(NUMPY[datatype]).itemsize:
            raise _bad(
                f"input {tensor.get('name')!r}: {len(raw)} bytes is not a whole {datatype} tensor"
            )
        return np.frombuffer(raw, dtype=NUMPY[datatype]).tolist(), offset
    data = tensor.get("data")
    if data is None:
        raise _bad(f"input {tensor.get('name')!r} has neither 'data' nor binary data")
    flat = np.asarray(data, dtype=object).reshape(-1).tolist() if isinstance(data, list) else [data]
    return flat, offset


def _rows(request: dict[str, Any], binary: bytes, served: ServedModel) -> list[dict[str, Any]]:
    columns: dict[str, list[Any]] = {}
    offset = 0
    for tensor in request["inputs"]:
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise _bad("each input needs a 'name' (a string), 'shape', 'datatype' and data")
        values, offset = _tensor_values(tensor, binary, offset)
        shape = tensor.get("shape") or [len(values)]
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise _bad(f"input {tensor['name']!r}: shape must be a list of non-negative integers")
        if int(np.prod(shape)) != len(values):
            raise _bad(
                f"input {tensor['name']!r}: shape {shape} does not hold {len(values)} values"
            )
        if (
            served.predictor.tensor_input is not None
            and tensor["name"] == served.predictor.tensor_input[0]
        ):
            width = served.predictor.tensor_input[1]
            if len(shape) != 2 or shape[1] != width:
                raise _bad(f"input {tensor['name']!r} must have shape [n, {width}], got {shape}")
            columns[tensor["name"]] = [values[i : i + width] for i in range(0, len(values), width)]
        else:
            columns[tensor["name"]] = values
    counts = {len(v) for v in columns.values()}
    if len(counts) > 1:
        raise _bad("all inputs must have the same batch size")
    count = counts.pop() if counts else 0
    return [{name: values[i] for name, values in columns.items()} for i in range(count)]


def _respond(
    request: dict[str, Any], served: ServedModel, labels: np.ndarray, proba: np.ndarray
) -> Response:
    outputs: dict[str, tuple[str, list[int], np.ndarray]] = {
        "label": ("INT64", list(labels.shape), labels.astype(np.int64)),
        "probabilities": ("FP32", list(proba.shape), proba.astype(np.float32)),
    }
    wanted = request.get("outputs") or [{"name": n} for n in outputs]
    all_binary = bool((request.get("parameters") or {}).get("binary_data_output"))
    body: dict[str, Any] = {
        "model_name": served.name,
        "model_version": served.version,
        "outputs": [],
    }
    if "id" in request:
        body["id"] = request["id"]
    chunks: list[bytes] = []
    if not isinstance(wanted, list):
        raise _bad("'outputs' must be a list of {\"name\": ...} objects")
    for entry in wanted:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or name not in outputs:  # {"name": {}} is unhashable
            raise _bad(f"unknown output {name!r}; outputs are {list(outputs)}")
        datatype, shape, array = outputs[name]
        item: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
        wants = entry.get("parameters") or {}
        if all_binary or (isinstance(wants, dict) and wants.get("binary_data")):
            raw = array.astype(NUMPY[datatype]).tobytes()
            item["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            item["data"] = array.reshape(-1).tolist()
        body["outputs"].append(item)
    header = orjson.dumps(body)
    if not chunks:
        return Response(header, media_type="application/json")
    return Response(
        header + b"".join(chunks),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(header))},
    )


async def _infer(request: Request, name: str, version: str | None) -> Response:
    async def run() -> Response:
        served = serving_model(request, name, version)
        admit(request, served)
        parsed, binary = _parse_request(await request.body(), request.headers.get(HEADER))
        rows = served.schema.validate_rows(
            _rows(parsed, binary, served), settings_of(request).max_rows
        )
        labels, proba = await run_model(request, served, rows)
        request.app.state.metrics.rows.labels(served.name, served.version).inc(len(rows))
        return _respond(parsed, served, labels, proba)

    return await _guard(request, run)


async def infer(request: Request) -> Response:
    return await _infer(request, request.path_params["name"], None)


async def infer_version(request: Request) -> Response:
    params = request.path_params
    return await _infer(request, params["name"], params["version"])


def _operation(served: ServedModel, components: Components) -> Schema:
    metadata = _metadata(served, [served.version])
    return openapi_operations.v2_infer(served, components, metadata, ["BYTES", *NUMPY])


ENDPOINTS = (
    Endpoint(
        route="/v2/models/{name}/infer",
        handler=infer,
        name="v2_infer",
        summary="Inference",
        tag="kserve v2 protocol",
        docs_path="/v2/models/{name}/infer",
        per="model",
        operation=_operation,
    ),
    Endpoint(
        route="/v2/models/{name}/versions/{version}/infer",
        handler=infer_version,
        name="v2_infer_version",
        summary="Inference, pinned version",
        tag="kserve v2 protocol",
        docs_path="/v2/models/{name}/versions/{version}/infer",
        per="version",
        operation=_operation,
    ),
)
