"""The admin API: load and unload versions, move aliases, split traffic, roll back.

Off unless ``COURSE_SERVE_ADMIN_TOKEN`` is set (every route answers 404 saying how to turn
it on); each call then needs ``Authorization: Bearer <token>`` (401 otherwise, compared in
constant time). Every change is logged with its request id, takes effect atomically and
never fails a request in flight (``gateway``). Without Redis the routing belongs to one
process: with several replicas, send the change to each, or set ``COURSE_SERVE_ROUTING`` and
restart. With ``COURSE_SERVE_REDIS_URL`` the change goes to Redis and every worker and replica
adopts it within a second (``routing_sync``), loads and unloads included (the package path
must then exist on every replica's disk).

    GET    /admin/models/{name}/routing              aliases, weights, split, versions
    POST   /admin/models                  {"path"}  load (and verify) a package: 201
    DELETE /admin/models/{name}/versions/{version}  unload (409 while routed to)
    PUT    /admin/models/{name}/aliases/{alias}  {"version"}
    DELETE /admin/models/{name}/aliases/{alias}
    PUT    /admin/models/{name}/traffic   {"weights": {"stable": 90, "canary": 10}}
    POST   /admin/models/{name}/promote   {"alias": "canary"}  stable := canary, split ends
    POST   /admin/models/{name}/rollback            back to before the latest rollout (one call)
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from course_pkg.serving.errors import ApiError
from course_pkg.serving.gateway import Routing
from course_pkg.serving.http import json_response, read_json, registry_of, request_id
from course_pkg.serving.observability import Metrics
from course_pkg.serving.registry import AlreadyLoaded, ModelRegistry

LOG = logging.getLogger("course_pkg.serving.admin")


def require_admin(request: Request) -> None:
    token = request.app.state.settings.admin_token
    if token is None:
        raise ApiError(
            404,
            "admin_off",
            "the admin API is off; start the server with COURSE_SERVE_ADMIN_TOKEN set "
            "(at least 16 random characters) to turn it on",
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise ApiError(
            401,
            "unauthorized",
            "send the admin token as 'Authorization: Bearer <token>'",
            headers={"www-authenticate": 'Bearer realm="course-pkg admin"'},
        )


router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


def publish(registry: ModelRegistry, metrics: Metrics, name: str) -> dict[str, Any]:
    """The model's routing as the API shows it; the traffic gauge follows it."""
    routing = registry.routes.get(name)
    view = {
        "model": name,
        "versions": registry.versions(name),
        **routing.describe(),
        "rollback_steps": registry.routes.history(name),
    }
    for version in view["versions"]:
        metrics.traffic.labels(name, version).set(view["split"].get(version, 0.0))
    return view


def _publish(request: Request, name: str) -> dict[str, Any]:
    return publish(registry_of(request), request.app.state.metrics, name)


def _changed(request: Request, name: str, what: str, routing: Routing) -> Response:
    LOG.warning("admin: %s %s → %s (request %s)", name, what, routing, request_id(request))
    return json_response(_publish(request, name))


async def _body(request: Request, key: str, kind: type) -> Any:
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get(key), kind):
        raise ApiError(
            422, "invalid_request", f'expected a JSON object with "{key}" ({kind.__name__})'
        )
    return body[key]


def _model(request: Request, name: str) -> ModelRegistry:
    registry = registry_of(request)
    registry.get(name)  # 404 listing the models served
    return registry


@router.get("/models/{name}/routing", summary="Aliases, weights and the traffic split")
async def routing(request: Request, name: str) -> Response:
    _model(request, name)
    return json_response(_publish(request, name))


@router.post("/models", summary="Load, verify and warm a package from the server's disk")
async def load(request: Request) -> Response:
    path = Path(await _body(request, "path", str))
    if not (path / "manifest.json").is_file():
        raise ApiError(422, "invalid_request", f"{path}: no manifest.json there; give a package")
    registry = registry_of(request)
    sync = request.app.state.routing_sync
    if sync is not None and not sync.store.link.available():
        raise ApiError(
            503,
            "routing_unavailable",
            "the shared routing table (Redis) is unreachable; the other workers could not "
            "load this package: retry once Redis is back",
            headers={"retry-after": "1"},
        )
    try:
        served = await asyncio.to_thread(registry.load, path)
    except ApiError:
        raise
    except AlreadyLoaded as error:
        raise ApiError(409, "already_loaded", str(error)) from None
    except Exception as error:  # hash or signature mismatch, unreadable ONNX, …
        raise ApiError(
            422, "package_rejected", f"{path}: {type(error).__name__}: {error}"
        ) from None
    if sync is not None:
        try:
            await asyncio.to_thread(sync.announce, served, True)
        except ApiError:  # the others cannot follow: this process must not serve it alone
            registry.unload(served.name, served.version)
            raise
    request.app.state.metrics.model_info.labels(served.name, served.version, served.sha256).set(1)
    LOG.warning("admin: loaded %s %s from %s", served.name, served.version, path)
    return json_response({**served.info(), "routing": _publish(request, served.name)}, 201)


@router.delete("/models/{name}/versions/{version}", summary="Stop serving a version")
async def unload(request: Request, name: str, version: str) -> Response:
    served = _model(request, name).unload(name, version)
    sync = request.app.state.routing_sync
    if sync is not None:
        await asyncio.to_thread(sync.announce, served, False)
    metrics = request.app.state.metrics
    metrics.model_info.remove(served.name, served.version, served.sha256)
    metrics.traffic.remove(served.name, served.version)
    LOG.warning("admin: unloaded %s %s", name, served.version)
    return json_response(_publish(request, name))


@router.put("/models/{name}/aliases/{alias}", summary="Point an alias at a version")
async def set_alias(request: Request, name: str, alias: str) -> Response:
    version = await _body(request, "version", str)
    routes = _model(request, name).routes
    return _changed(request, name, f"alias {alias}", routes.set_alias(name, alias, version))


@router.delete("/models/{name}/aliases/{alias}", summary="Remove an alias")
async def remove_alias(request: Request, name: str, alias: str) -> Response:
    routes = _model(request, name).routes
    return _changed(request, name, f"remove alias {alias}", routes.remove_alias(name, alias))


@router.put("/models/{name}/traffic", summary="Split unversioned traffic by weight")
async def set_traffic(request: Request, name: str) -> Response:
    weights = await _body(request, "weights", dict)
    if not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights.values()):
        raise ApiError(422, "invalid_routing", "weights must be numbers (percent)")
    routes = _model(request, name).routes
    return _changed(request, name, "traffic", routes.set_weights(name, weights))


@router.post("/models/{name}/promote", summary="Make an alias's version stable; end the split")
async def promote(request: Request, name: str) -> Response:
    alias = await _body(request, "alias", str)
    routes = _model(request, name).routes
    return _changed(request, name, f"promote {alias}", routes.promote(name, alias))


@router.post(
    "/models/{name}/rollback",
    summary="All traffic back to where it was before the latest rollout (canary or promotion)",
)
async def rollback(request: Request, name: str) -> Response:
    routes = _model(request, name).routes
    return _changed(request, name, "rollback", routes.rollback(name))
