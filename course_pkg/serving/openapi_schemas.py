"""The pieces of the OpenAPI document that come from the loaded models' manifests.

Every loaded version contributes named components built from its manifest's input schema
(``RowSchema``, the same pydantic types that validate requests) with its input example, e.g.
``churn-1.1.0.row``; each protocol module wraps that row in its own request body
(``endpoints.Endpoint.operation``). Component names are the model's name and version with
anything outside ``[A-Za-z0-9._-]`` replaced, as OpenAPI requires of component keys.
"""

from __future__ import annotations

import copy
import csv
import io
import re
from typing import Any

from course_pkg.serving.registry import ServedModel

Schema = dict[str, Any]
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def component_name(served: ServedModel, what: str) -> str:
    """``churn-1.1.0.row``: unique per model version and purpose, valid as a component key."""
    return _UNSAFE.sub("_", f"{served.name}-{served.version}.{what}")


class Components:
    """The named schemas one OpenAPI document refers to, collected while its paths are built."""

    def __init__(self) -> None:
        self.schemas: dict[str, Schema] = {}

    def add(self, name: str, schema: Schema) -> Schema:
        """Register ``schema`` under ``name`` (first one wins) and return a ``$ref`` to it."""
        self.schemas.setdefault(name, schema)
        return {"$ref": f"#/components/schemas/{name}"}

    def row(self, served: ServedModel) -> Schema:
        """A ``$ref`` to the version's row component (one record, as validation sees it)."""
        return self.add(component_name(served, "row"), row_schema(served, self))

    def shared(self, name: str, schema: Schema) -> Schema:
        """A component every model's operations share (error shapes, answers)."""
        return self.add(name, schema)


def row_schema(served: ServedModel, components: Components) -> Schema:
    """The version's row as JSON Schema: its manifest's columns, types, categories and
    example rows. Nested definitions (none today) become components of their own."""
    prefix = component_name(served, "")
    schema = copy.deepcopy(served.schema.json_schema())
    for name, definition in schema.pop("$defs", {}).items():
        components.add(prefix + name, definition)
    _retarget(schema, "#/$defs/", f"#/components/schemas/{prefix}")
    schema["title"] = f"{served.name} {served.version}: one row"
    schema["examples"] = served.example()[:3]
    return schema


def _retarget(node: Any, old: str, new: str) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(old):
            node["$ref"] = new + ref[len(old) :]
        for value in node.values():
            _retarget(value, old, new)
    elif isinstance(node, list):
        for value in node:
            _retarget(value, old, new)


def columns_of(served: ServedModel, components: Components) -> dict[str, Schema]:
    """Each column's JSON Schema (from the row component): for columnar request layouts."""
    properties: dict[str, Schema] = row_schema(served, components)["properties"]
    return properties


def rows(served: ServedModel, components: Components) -> Schema:
    """A list of rows; for a single-input model (digits' ``pixels``) a row may also be the
    bare value, as TF Serving's and MLflow's ``instances`` allow."""
    item = components.row(served)
    columns = columns_of(served, components)
    if len(columns) == 1:
        item = {"anyOf": [item, next(iter(columns.values()))]}
    return {"type": "array", "minItems": 1, "items": item}


def columnar(served: ServedModel, components: Components) -> Schema:
    """``{column: [values...]}``: every column a list, one value per row."""
    columns = columns_of(served, components)
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(columns),
        "properties": {
            name: {"type": "array", "minItems": 1, "items": schema}
            for name, schema in columns.items()
        },
    }


def csv_example(served: ServedModel) -> str:
    """The version's example rows as the CSV a client would send (header first)."""
    rows = served.example()
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=served.schema.columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: row.get(c) for c in served.schema.columns} for row in rows)
    return out.getvalue()


def json_body(schema: Schema, example: Any) -> Schema:
    return {"schema": schema, "example": example}


BINARY: Schema = {"type": "string", "format": "binary"}
MULTIPART: Schema = {
    "schema": {"type": "object", "required": ["file"], "properties": {"file": BINARY}}
}
# ``{"error": "message"}``: TF Serving's and KServe's error body.
PLAIN_ERROR: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}


def responses(ok: Schema, errors: dict[str, str], error_schema: Schema) -> Schema:
    """An operation's ``responses``: ``ok`` for 200, ``errors`` ({status: when}) in one shape."""
    content = {"application/json": {"schema": error_schema}}
    return {
        "200": ok,
        **{status: {"description": when, "content": content} for status, when in errors.items()},
    }
