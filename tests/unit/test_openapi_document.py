"""The OpenAPI document: valid, one concrete path per model on every protocol, each with that
model's own columns and example, following admin loads and unloads; and every prediction
route declared once (served and documented from the same ``Endpoint``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from course_pkg.serving import (
    ServerSettings,
    create_app,
    kserve,
    mlflow_protocol,
    native,
    tfserving,
)

TOKEN = "docs-test-token-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}
ENDPOINTS = [
    *mlflow_protocol.ENDPOINTS,
    *native.ENDPOINTS,
    *tfserving.ENDPOINTS,
    *kserve.ENDPOINTS,
]
# Every protocol's prediction paths for one model version, as documented.
PATHS = [
    "/v1/models/{name}/predict",
    "/v1/models/{name}/versions/{version}/predict",
    "/v1/models/{name}:predict",
    "/v1/models/{name}/versions/{version}:predict",
    "/v2/models/{name}/infer",
    "/v2/models/{name}/versions/{version}/infer",
]


@pytest.fixture(scope="module")
def client(model_packages: dict[str, Path]) -> Iterator[TestClient]:
    app = create_app(
        [model_packages["churn"], model_packages["churn_v2"], model_packages["digits"]],
        ServerSettings(background_load=False, admin_token=TOKEN),
    )
    with TestClient(app) as test_client:
        yield test_client


def concrete(template: str, name: str, version: str) -> str:
    return template.replace("{name}", name).replace("{version}", version)


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def test_the_document_is_valid_openapi(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    validate(spec)  # raises with the offending path if the document is not OpenAPI 3.1
    operation_ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids)), Counter(operation_ids).most_common(3)


@pytest.mark.parametrize(
    ("name", "version", "column"),
    [("churn", "1.0.0", "contract"), ("churn", "1.1.0", "contract"), ("digits", "1.0.0", "pixels")],
)
def test_each_model_version_has_its_own_row_component_and_paths(
    client: TestClient, model_packages: dict[str, Path], name: str, version: str, column: str
) -> None:
    spec = client.get("/openapi.json").json()
    served = client.app.state.registry.get(name, version)  # type: ignore[attr-defined]
    row = spec["components"]["schemas"][f"{name}-{version}.row"]
    assert list(row["properties"]) == [c["name"] for c in served.manifest["input_schema"]]
    assert column in row["required"] and row["additionalProperties"] is False
    assert row["examples"][0] == served.example()[0]  # the manifest's input example
    routed = client.get(f"/v1/models/{name}").json()["version"]
    for template in PATHS:
        if "{version}" not in template and routed != version:
            continue  # an unversioned path documents the version the routing serves
        path = concrete(template, name, version)
        body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        component = body["schema"]["$ref"].rsplit("/", 1)[-1]
        assert component.startswith(f"{name}-{version}."), (path, component)


def test_a_client_of_digits_sees_pixels_not_churn_columns(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/models/digits/predict"]["post"]["requestBody"]["content"]
    records = resolve(spec, body["application/json"]["schema"])
    row = resolve(spec, records["properties"]["records"]["items"])
    assert list(row["properties"]) == ["pixels"]
    assert row["properties"]["pixels"]["minItems"] == 64
    assert "image/png" in body and "text/csv" not in body
    churn = spec["paths"]["/v1/models/churn/predict"]["post"]["requestBody"]["content"]
    assert churn["text/csv"]["example"].startswith("senior_citizen,tenure_months,contract")
    v2 = resolve(
        spec,
        spec["paths"]["/v2/models/digits/infer"]["post"]["requestBody"]["content"][
            "application/json"
        ]["schema"],
    )
    assert v2["properties"]["inputs"]["items"]["properties"]["name"]["enum"] == ["pixels"]


def test_mlflow_documents_the_default_model_only(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/invocations"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("churn-1.1.0.mlflow-invocations")
    assert body["example"]["dataframe_split"]["columns"][2] == "contract"


def test_every_documented_example_is_accepted_and_labelled_by_its_route_template(
    client: TestClient,
) -> None:
    spec = client.get("/openapi.json").json()
    tried = []
    for path, operations in spec["paths"].items():
        operation = operations.get("post", {})
        if operation.get("tags", [""])[0] not in {e.tag for e in ENDPOINTS} or "{" in path:
            continue
        example = operation["requestBody"]["content"]["application/json"]["example"]
        answer = client.post(path, json=example)
        assert answer.status_code == 200, (path, answer.text[:300])
        tried.append(path)
    # /invocations, then native, TF Serving and V2: 2 models + 3 versions each
    assert len(tried) == 1 + 3 * (2 + 3), tried
    metrics = client.get("/metrics").text
    for endpoint in ENDPOINTS:  # metrics and logs name the route template, as before
        assert f'route="{endpoint.route}",status="200"' in metrics, endpoint.route


def test_models_loaded_and_unloaded_through_the_admin_api_show_up(
    model_packages: dict[str, Path],
) -> None:
    settings = ServerSettings(background_load=False, admin_token=TOKEN)
    with TestClient(create_app([model_packages["churn"]], settings)) as client:
        before = client.get("/openapi.json").json()
        assert "/v1/models/digits/predict" not in before["paths"]
        assert "digits-1.0.0.row" not in before["components"]["schemas"]
        for package in ("digits", "churn_v2"):
            loaded = client.post(
                "/admin/models", json={"path": str(model_packages[package])}, headers=AUTH
            )
            assert loaded.status_code == 201, loaded.text
        after = client.get("/openapi.json").json()
        validate(after)
        for template in PATHS:  # a new model: every path; a new version: its pinned paths
            assert concrete(template, "digits", "1.0.0") in after["paths"], template
            if "{version}" in template:
                assert concrete(template, "churn", "1.1.0") in after["paths"], template
        assert {"digits-1.0.0.row", "churn-1.1.0.row"} <= set(after["components"]["schemas"])
        gone = client.delete("/admin/models/churn/versions/1.1.0", headers=AUTH)
        assert gone.status_code == 200, gone.text
        final = client.get("/openapi.json").json()
        assert not [p for p in final["paths"] if "1.1.0" in p]
        assert "churn-1.1.0.row" not in final["components"]["schemas"]
        assert "/v1/models/digits/predict" in final["paths"]


def test_before_any_model_is_loaded_the_templates_are_documented(
    model_packages: dict[str, Path],
) -> None:
    client = TestClient(create_app([model_packages["churn"]], ServerSettings()))  # no lifespan
    spec = client.get("/openapi.json").json()
    validate(spec)
    for endpoint in ENDPOINTS:
        assert "post" in spec["paths"][endpoint.route], endpoint.route


def test_docs_page_lists_the_routes(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text and "/openapi.json" in page.text
    spec = client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():  # what Swagger UI's route list shows
        for operation in operations.values():
            assert operation["summary"] and operation["tags"], path


def test_every_prediction_route_is_declared_once(client: TestClient) -> None:
    routes = client.app.routes  # type: ignore[attr-defined]
    served = Counter(
        (route.path, method) for route in routes for method in getattr(route, "methods", None) or ()
    )
    assert served and max(served.values()) == 1, served.most_common(3)
    for endpoint in ENDPOINTS:
        assert not [r for r in routes if isinstance(r, APIRoute) and r.path == endpoint.route], (
            f"{endpoint.route} is also a FastAPI route"
        )
        assert (endpoint.route, "POST") in served
    # the hot routes are matched first, before any FastAPI route
    first = [getattr(r, "path", "") for r in routes[: len(ENDPOINTS)]]
    assert first == [e.route for e in ENDPOINTS]
