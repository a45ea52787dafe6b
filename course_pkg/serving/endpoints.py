"""One declaration per prediction endpoint: the route it serves and the OpenAPI it documents.

Each protocol module lists its prediction endpoints as ``Endpoint`` values. From one value
come both

- the **served route**: a bare Starlette ``Route`` on ``route`` (the template metrics and logs
  are labelled with), whose handler takes only the ``Request``. FastAPI's per-request
  dependency solving and scope bookkeeping cost ~45 % of a one-row request
  (docs/SERVING.md), and these handlers need none of it; and
- its **OpenAPI operations**: one per loaded model (or model version) on a concrete path,
  ``docs_path`` with the name and version filled in (``/v1/models/churn/predict``), whose
  request body is ``operation``'s, built from that version's manifest schema and example.

Concrete paths rather than one ``{name}`` path with a ``oneOf`` body: a generated client gets
one typed method per model, Swagger UI (/docs) shows each model's own example and "Try it
out" needs no name, and schemathesis generates rows of the right model for each path (a
``oneOf`` of unrelated row types can tell neither tool which branch goes with which name).
The document is rebuilt whenever the set of loaded versions, the routing's stable versions
or the default model change (admin loads and unloads, a shared-routing sync), and cached
otherwise. Until a model is loaded, each endpoint is documented on its template path.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from starlette.routing import Match, Route
from starlette.types import Scope

from course_pkg.serving.errors import ApiError
from course_pkg.serving.openapi_schemas import Components, Schema
from course_pkg.serving.registry import ModelRegistry, ServedModel

Handler = Callable[[Request], Awaitable[Response]]
Operation = Callable[[ServedModel, Components], Schema]
_PARAM = re.compile(r"{([^}]+)}")


@dataclass(frozen=True)
class Endpoint:
    """A prediction endpoint: where it is served, how it is handled, how it is documented.

    ``per`` says which concrete paths document it: ``"model"`` one per model name (the
    version the routing serves: its stable alias), ``"version"`` one per loaded version,
    ``"default"`` only the default model (MLflow's /invocations serves one model). ``name``
    starts each operation's ``operationId`` (the method name a generated client gets).
    """

    route: str
    handler: Handler
    name: str
    summary: str
    tag: str
    docs_path: str
    per: Literal["model", "version", "default"]
    operation: Operation
    description: str = ""
    methods: tuple[str, ...] = field(default=("POST",))

    def starlette_route(self) -> Route:
        return _NamedRoute(self.route, self.handler, methods=list(self.methods))

    def document(self, registry: ModelRegistry, components: Components) -> dict[str, Schema]:
        """``{path: {method: operation}}`` for every model this endpoint serves now."""
        documented = [(self.docs_path, served) for served in self._models(registry)]
        if not documented:
            return {self.route: self._operations(None, components, self.route)}
        paths: dict[str, Schema] = {}
        for template, served in documented:
            path = template.replace("{name}", quote(served.name, safe=""))
            path = path.replace("{version}", quote(served.version, safe=""))
            paths[path] = self._operations(served, components, path)
        return paths

    def _models(self, registry: ModelRegistry) -> list[ServedModel]:
        if not registry.ready:
            return []
        if self.per == "default":
            wanted: list[tuple[str, str | None]] = [(registry.default_name(), None)]
        elif self.per == "model":
            wanted = [(name, None) for name in registry.names()]
        else:
            wanted = [(n, v) for n in registry.names() for v in registry.versions(n)]
        models = []
        for name, version in wanted:
            try:
                models.append(registry.get(name, version))
            except ApiError:  # unloaded while the document was built: the next build is right
                continue
        return models

    def _operations(
        self, served: ServedModel | None, components: Components, path: str
    ) -> dict[str, Schema]:
        operation_id = self.name
        if served is not None and self.per != "default":
            operation_id += f"_{served.name}"
            if self.per == "version":
                operation_id += f"_{served.version}"
        operation: Schema = {
            "tags": [self.tag],
            "summary": self.summary,
            "operationId": re.sub(r"[^A-Za-z0-9_]", "_", operation_id),
        }
        if self.description:
            operation["description"] = self.description
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(path)
        ]
        if parameters:
            operation["parameters"] = parameters
        if served is None:
            operation["responses"] = {"200": {"description": "see the protocol's docs"}}
        else:
            operation.update(self.operation(served, components))
        return {method.lower(): operation for method in self.methods}


class _NamedRoute(Route):
    """A Starlette route that names itself in the scope when it matches, as FastAPI's routes
    do (FastAPI's router does not do it for plain routes), so metrics and the access log label
    its requests, 405s included, with the route template."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


def docs_key(registry: ModelRegistry) -> tuple[Any, ...]:
    """What the document depends on: the versions loaded (in order: the first is the
    default model) and each model's routed version. Cheap, so checked on every request for
    /openapi.json instead of hooking every place that loads or unloads a model."""
    if not registry.ready:
        return (False, registry.error)
    stable: list[tuple[str, str | None]] = []
    for name in registry.names():
        try:
            stable.append((name, registry.get(name).version))
        except ApiError:  # unloaded meanwhile: the next call sees a settled registry
            stable.append((name, None))
    return (True, tuple(registry.order), tuple(stable))


def install(app: FastAPI, endpoints: Sequence[Endpoint]) -> None:
    """Serve ``endpoints`` ahead of every FastAPI route (the hot path is matched first) and
    add their operations and components to the app's OpenAPI document."""
    app.router.routes[0:0] = [endpoint.starlette_route() for endpoint in endpoints]
    base_openapi = app.openapi  # FastAPI's own document of its routes (cached by FastAPI)
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        registry: ModelRegistry = app.state.registry
        key = (docs_key(registry), id(base_openapi()))
        if cache.get("key") != key:
            cache["document"] = merged(base_openapi(), registry, endpoints)
            cache["key"] = key
        document: dict[str, Any] = cache["document"]
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented extension point


def merged(
    base: dict[str, Any], registry: ModelRegistry, endpoints: Sequence[Endpoint]
) -> dict[str, Any]:
    """``base`` (FastAPI's document, left untouched) with the endpoints' paths first and the
    models' components added."""
    components = Components()
    paths: dict[str, Any] = {}
    for endpoint in endpoints:
        for path, operations in endpoint.document(registry, components).items():
            paths.setdefault(path, {}).update(operations)
    base_components = base.get("components", {})
    return {
        **base,
        "paths": {**paths, **base.get("paths", {})},
        "components": {
            **base_components,
            "schemas": {**base_components.get("schemas", {}), **components.schemas},
        },
    }
