"""Each protocol's prediction request and answers for one model version, in OpenAPI.

The ``operation`` factories of the protocols' ``endpoints.Endpoint`` declarations: given a
loaded version, the request body (a component built from its manifest's row schema and
example, ``openapi_schemas``) and the answers, in the protocol's own shapes. Kept apart from
the handlers so each protocol module stays about serving.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from course_pkg.serving.openapi_schemas import (
    BINARY,
    MULTIPART,
    PLAIN_ERROR,
    Components,
    Schema,
    columnar,
    columns_of,
    component_name,
    csv_example,
    json_body,
    responses,
    rows,
)
from course_pkg.serving.registry import ServedModel

NATIVE_ERRORS = {
    "404": "unknown model or version",
    "413": "body over the limit, or too many rows",
    "415": "unsupported Content-Type",
    "422": "invalid input: every problem with field and row",
    "429": "rate limit spent (Retry-After)",
    "503": "models still loading",
}
NATIVE_ERROR: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "code", "message", "details"],
            "properties": {
                "status": {"type": "integer"},
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "field": {"type": "string"},
                            "row": {"type": ["integer", "null"]},
                            "message": {"type": "string"},
                        },
                    },
                },
                "request_id": {"type": ["string", "null"]},
            },
        }
    },
}
PREDICTIONS: Schema = {
    "type": "object",
    "required": ["model", "version", "predictions"],
    "properties": {
        "model": {"type": "string"},
        "version": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
        "predictions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["label", "probabilities"],
                "properties": {
                    "label": {},
                    "probabilities": {
                        "type": "object",
                        "additionalProperties": {"type": "number"},
                    },
                },
            },
        },
    },
}


def native_predict(served: ServedModel, components: Components) -> Schema:
    """The native predict route of one model version: JSON records, CSV or an image."""
    records = components.add(
        component_name(served, "records"),
        {
            "title": f"{served.name} {served.version}: records to predict",
            "type": "object",
            "required": ["records"],
            "additionalProperties": False,
            "properties": {
                "records": {"type": "array", "minItems": 1, "items": components.row(served)}
            },
        },
    )
    content: Schema = {"application/json": json_body(records, {"records": served.example()})}
    answer: Schema = {}
    if served.kind == "image":
        content["image/png"] = content["image/jpeg"] = {"schema": BINARY}
    else:
        content["text/csv"] = {"schema": {"type": "string"}, "example": csv_example(served)}
        answer["text/csv"] = {"schema": {"type": "string"}}
    content["multipart/form-data"] = MULTIPART
    classes = [str(c) for c in served.classes] or ["0", "1"]
    example = {
        "model": served.name,
        "version": served.version,
        "request_id": "3f1c…",
        "predictions": [
            {
                "label": served.classes[0] if served.classes else 0,
                "probabilities": {c: round(1 / len(classes), 3) for c in classes},
            }
        ],
    }
    ok = {
        "description": "labels and per-class probabilities (CSV in → CSV out)",
        "content": {
            "application/json": {
                "schema": components.shared("Predictions", PREDICTIONS),
                "example": example,
            },
            **answer,
        },
    }
    return {
        "requestBody": {"required": True, "content": content},
        "responses": responses(ok, NATIVE_ERRORS, components.shared("Error", NATIVE_ERROR)),
    }


MLFLOW_ERROR: Schema = {
    "type": "object",
    "required": ["error_code", "message"],
    "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
}


def mlflow_invocations(
    served: ServedModel, components: Components, formats: Sequence[str]
) -> Schema:
    """MLflow's four JSON layouts (exactly one per body) and CSV, for the default model."""
    records = rows(served, components)
    columns = served.schema.columns
    split = {
        "type": "object",
        "required": ["columns", "data"],
        "properties": {
            "columns": {"type": "array", "items": {"type": "string", "enum": columns}},
            "data": {"type": "array", "minItems": 1, "items": {"type": "array"}},
        },
    }
    body = components.add(
        component_name(served, "mlflow-invocations"),
        {
            "title": f"{served.name} {served.version}: an MLflow scoring request",
            "type": "object",
            "properties": {
                "dataframe_split": split,
                "dataframe_records": records,
                "instances": records,
                "inputs": {"anyOf": [records, columnar(served, components)]},
            },
            "oneOf": [{"required": [key]} for key in formats],
        },
    )
    example = served.example()
    split_example = {
        "dataframe_split": {
            "columns": columns,
            "data": [[row.get(c) for c in columns] for row in example],
        }
    }
    content: Schema = {"application/json": json_body(body, split_example)}
    if served.kind == "tabular":
        content["text/csv"] = {"schema": {"type": "string"}, "example": csv_example(served)}
    ok = {
        "description": "one label per row, as an MLflow classifier's pyfunc answers",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["predictions"],
                    "properties": {"predictions": {"type": "array"}},
                },
                "example": {"predictions": [served.classes[0] if served.classes else 0]},
            }
        },
    }
    errors = {
        "400": "invalid input (MLflow answers 400 where the native API says 422)",
        "413": "body over the limit",
        "429": "rate limit spent",
        "503": "the model is still loading",
    }
    described = responses(ok, errors, components.shared("MlflowError", MLFLOW_ERROR))
    described["415"] = {"description": "not JSON or CSV (text/plain, like MLflow)"}
    return {"requestBody": {"required": True, "content": content}, "responses": described}


def tf_predict(served: ServedModel, components: Components) -> Schema:
    """TF Serving's row (``instances``) and columnar (``inputs``) layouts for one version."""
    inputs = columnar(served, components)
    columns = columns_of(served, components)
    if len(columns) == 1:  # a single-input model also takes the bare batch
        bare = {"type": "array", "minItems": 1, "items": next(iter(columns.values()))}
        inputs = {"anyOf": [inputs, bare]}
    body = components.add(
        component_name(served, "tf-predict"),
        {
            "title": f"{served.name} {served.version}: a TF Serving predict request",
            "type": "object",
            "properties": {
                "signature_name": {"type": "string", "enum": ["serving_default"]},
                "instances": rows(served, components),
                "inputs": inputs,
            },
            "oneOf": [{"required": ["instances"]}, {"required": ["inputs"]}],
        },
    )
    ok = {
        "description": "row layout → predictions (one object per example); columnar → outputs",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "predictions": {"type": "array", "items": {"type": "object"}},
                        "outputs": {"type": "object"},
                    },
                },
            }
        },
    }
    errors = {
        "400": "invalid input (TF Serving's message)",
        "404": "Servable not found for request: …",
        "429": "rate limit spent",
        "503": "models still loading",
    }
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": json_body(body, {"instances": served.example()})},
        },
        "responses": responses(ok, errors, components.shared("PlainError", PLAIN_ERROR)),
    }


def _v2_example(served: ServedModel, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The version's example rows as one V2 request: a tensor per input."""
    rows = served.example()
    tensors = []
    for spec in inputs:
        values = [row.get(spec["name"]) for row in rows]
        if spec["shape"][-1] == 1:
            tensors.append({**spec, "shape": [len(values), 1], "data": values})
        else:  # a whole-row tensor (digits' pixels): [n, width], flattened
            flat = [v for value in values for v in (value or [])]
            tensors.append({**spec, "shape": [len(values), spec["shape"][-1]], "data": flat})
    return {"inputs": tensors}


def v2_infer(
    served: ServedModel, components: Components, metadata: dict[str, Any], datatypes: list[str]
) -> Schema:
    """A V2 inference request naming this version's input tensors (``metadata``: the
    version's V2 model metadata) and the ``datatypes`` the server decodes."""
    inputs = metadata["inputs"]
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string", "enum": [spec["name"] for spec in inputs]},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": datatypes},
            "data": {"type": "array"},
            "parameters": {
                "type": "object",
                "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
            },
        },
    }
    output = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "enum": [o["name"] for o in metadata["outputs"]]},
            "parameters": {"type": "object"},
        },
    }
    body = components.add(
        component_name(served, "v2-infer"),
        {
            "title": f"{served.name} {served.version}: a V2 inference request",
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": {"type": "object"},
                "inputs": {"type": "array", "items": tensor},
                "outputs": {"type": "array", "items": output},
            },
        },
    )
    ok = {
        "description": "label (INT64 [n]) and probabilities (FP32 [n, classes]); binary "
        "outputs when asked for (Inference-Header-Content-Length)",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["model_name", "outputs"],
                    "properties": {
                        "model_name": {"type": "string"},
                        "model_version": {"type": "string"},
                        "id": {"type": "string"},
                        "outputs": {"type": "array", "items": {"type": "object"}},
                    },
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
    errors = {
        "400": "invalid input",
        "404": "unknown model or version",
        "429": "rate limit spent",
        "503": "models still loading",
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": json_body(body, _v2_example(served, inputs)),
                "application/octet-stream": {
                    "schema": {
                        "type": "string",
                        "format": "binary",
                        "description": "the binary tensor extension: the JSON header "
                        "(its length in Inference-Header-Content-Length), then the tensors",
                    },
                },
            },
        },
        "responses": responses(ok, errors, components.shared("PlainError", PLAIN_ERROR)),
    }
