"""The reference server in-process (TestClient): every endpoint and every error path."""

from __future__ import annotations

import io
import json
import logging
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from course_pkg.checks.nb04 import GOOD  # one valid churn row, shared with notebook 04's checks
from course_pkg.datasets.digits import load_digit_images
from course_pkg.serving import ServerSettings, create_app
from course_pkg.training import train_churn


@pytest.fixture(scope="module")
def client(model_packages: dict[str, Path]) -> Iterator[TestClient]:
    app = create_app(
        [model_packages["churn"], model_packages["churn_v2"], model_packages["digits"]],
        ServerSettings(background_load=False, max_rows=500, max_body_bytes=200_000),
    )
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return train_churn().x_test.head(50)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records"))


def test_health_and_listing(client: TestClient) -> None:
    assert client.get("/health/live").json() == {"status": "alive"}
    ready = client.get("/health/ready").json()
    assert ready["models"] == ["churn:1.0.0", "churn:1.1.0", "digits:1.0.0"]
    listed = client.get("/v1/models").json()["models"]
    assert {(m["name"], m["version"]) for m in listed} == {
        ("churn", "1.0.0"),
        ("churn", "1.1.0"),
        ("digits", "1.0.0"),
    }
    churn = client.get("/v1/models/churn").json()
    assert churn["version"] == "1.1.0" and churn["versions"] == ["1.0.0", "1.1.0"]
    assert len(churn["sha256"]) == 64 and churn["input_schema"][2]["name"] == "contract"
    assert churn["model_version_status"][0]["state"] == "AVAILABLE"  # TF Serving's status
    pinned = client.get("/v1/models/churn/versions/1.0.0").json()
    assert pinned["version"] == "1.0.0" and pinned["sha256"] != churn["sha256"]


def test_not_ready_until_loaded(model_packages: dict[str, Path]) -> None:
    app = create_app([model_packages["churn"]], ServerSettings())
    client = TestClient(app)  # no `with`: the lifespan (which loads the models) never runs
    assert client.get("/health/live").status_code == 200
    response = client.get("/health/ready")
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    predict = client.post("/v1/models/churn/predict", json={"records": [{}]})
    assert predict.status_code == 503 and predict.json()["error"]["code"] == "not_ready"
    assert client.get("/ping").status_code == 503


def test_tampered_package_never_serves(model_packages: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "churn"
    shutil.copytree(model_packages["churn"], bad)
    with (bad / "model.onnx").open("ab") as handle:
        handle.write(b"\0")
    with TestClient(create_app([bad], ServerSettings(background_load=False))) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert "sha256 differs" in response.json()["error"]["message"]


def test_native_predict_matches_the_model(
    client: TestClient, rows: pd.DataFrame, model_packages: dict[str, Path]
) -> None:
    from course_pkg.artifacts import load_package

    sklearn_model, _ = load_package(model_packages["churn"], file="model.skops")
    response = client.post(
        "/v1/models/churn/versions/1.0.0/predict",
        json={"records": records(rows)},
        headers={"x-request-id": "req-42"},
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["model"], body["version"], body["request_id"]) == ("churn", "1.0.0", "req-42")
    assert response.headers["x-request-id"] == "req-42"
    labels = [p["label"] for p in body["predictions"]]
    proba = np.array(
        [[p["probabilities"]["0"], p["probabilities"]["1"]] for p in body["predictions"]]
    )
    assert labels == sklearn_model.predict(rows).tolist()
    assert np.abs(proba - sklearn_model.predict_proba(rows)).max() < 1e-5
    latest = client.post("/v1/models/churn/predict", json={"records": records(rows.head(1))})
    assert latest.json()["version"] == "1.1.0"  # unversioned → highest version


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"contract": "weekly"}, "contract", "'month-to-month', 'one-year' or 'two-year'"),
        ({"tenure_months": "12"}, "tenure_months", "valid integer"),
        ({"tenure_months": 12.5}, "tenure_months", "valid integer"),
        ({"monthly_charges": "cheap"}, "monthly_charges", "valid number"),
        ({"senior_citizen": True}, "senior_citizen", "valid integer"),
        ({"extra_column": 1}, "extra_column", "Extra inputs are not permitted"),
        ({"contract": None}, "contract", "Input should be"),
    ],
)
def test_invalid_rows_get_422_with_field_and_row(
    client: TestClient, change: dict[str, Any], field: str, fragment: str
) -> None:
    response = client.post("/v1/models/churn/predict", json={"records": [GOOD, {**GOOD, **change}]})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and error["request_id"]
    assert [(d["field"], d["row"]) for d in error["details"]] == [(field, 1)]
    assert fragment in error["details"][0]["message"]


def test_missing_field_nan_and_infinity(client: TestClient) -> None:
    partial = {k: v for k, v in GOOD.items() if k != "contract"}
    missing = client.post("/v1/models/churn/predict", json={"records": [partial]}).json()
    assert missing["error"]["details"][0]["field"] == "contract"
    assert missing["error"]["details"][0]["message"] == "Field required"
    for literal in ("NaN", "Infinity", "-Infinity"):
        body = json.dumps({"records": [GOOD]}).replace("50.5", literal)
        response = client.post(
            "/v1/models/churn/predict", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, literal
        assert "finite" in response.json()["error"]["details"][0]["message"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"records": []}, 422, "invalid_input"),
        ({"records": "x"}, 422, "invalid_input"),
        ({"rows": [GOOD]}, 422, "invalid_input"),
        ([GOOD], 422, "invalid_input"),
        ({"records": [GOOD] * 501}, 413, "too_many_rows"),
    ],
)
def test_batch_shape_errors(client: TestClient, body: Any, status: int, code: str) -> None:
    response = client.post("/v1/models/churn/predict", json=body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_transport_errors(client: TestClient) -> None:
    cases = [
        (
            client.post(
                "/v1/models/churn/predict",
                content=b"{",
                headers={"content-type": "application/json"},
            ),
            400,
            "invalid_json",
        ),
        (
            client.post(
                "/v1/models/churn/predict",
                content=b"",
                headers={"content-type": "application/json"},
            ),
            400,
            "empty_body",
        ),
        (
            client.post(
                "/v1/models/churn/predict",
                content=b"a",
                headers={"content-type": "application/xml"},
            ),
            415,
            "unsupported_media_type",
        ),
        (
            client.post(
                "/v1/models/churn/predict",
                content=b"x" * 200_001,
                headers={"content-type": "application/json"},
            ),
            413,
            "body_too_large",
        ),
        (client.post("/v1/models/nope/predict", json={"records": [GOOD]}), 404, "not_found"),
        (
            client.post("/v1/models/churn/versions/9.9.9/predict", json={"records": [GOOD]}),
            404,
            "not_found",
        ),
        (client.get("/no/such/route"), 404, "not_found"),
        (client.delete("/v1/models/churn"), 405, "method_not_allowed"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
    assert "available: churn, digits" in cases[4][0].json()["error"]["message"]


def test_body_limit_while_streaming(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies as bytes arrive
        for _ in range(30):
            yield b" " * 10_000

    response = client.post(
        "/v1/models/churn/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_csv_in_csv_out_and_json(client: TestClient, rows: pd.DataFrame) -> None:
    frame = rows.reset_index(drop=True).assign(customer_id=range(len(rows)))  # extra column
    csv = frame.to_csv(index=False)
    streamed = client.post(
        "/v1/models/churn/predict", content=csv, headers={"content-type": "text/csv"}
    )
    assert streamed.status_code == 200 and streamed.headers["content-type"].startswith("text/csv")
    out = pd.read_csv(io.StringIO(streamed.text))
    assert list(out["customer_id"]) == list(range(len(rows)))  # passes through, in order
    as_json = client.post("/v1/models/churn/predict", json={"records": records(rows)}).json()[
        "predictions"
    ]
    assert list(out["prediction"]) == [p["label"] for p in as_json]
    assert np.allclose(out["probability_1"], [p["probabilities"]["1"] for p in as_json], atol=1e-6)
    assert set(out["model_version"]) == {"1.1.0"}
    upload = client.post(
        "/v1/models/churn/predict",
        files={"file": ("batch.csv", csv, "text/csv")},
        headers={"accept": "application/json"},
    )
    assert [p["label"] for p in upload.json()["predictions"]] == list(out["prediction"])


def test_csv_errors_name_the_row(client: TestClient, rows: pd.DataFrame) -> None:
    frame = rows.reset_index(drop=True).copy()
    frame.loc[5, "contract"] = "weekly"
    frame.loc[7, "monthly_charges"] = math.inf
    response = client.post(
        "/v1/models/churn/predict",
        content=frame.to_csv(index=False),
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 422
    details = {(d["field"], d["row"]) for d in response.json()["error"]["details"]}
    assert details == {("contract", 5), ("monthly_charges", 7)}
    for body in (b"", b"senior_citizen\n", b'a,b\n"unterminated\n'):
        bad = client.post(
            "/v1/models/churn/predict", content=body, headers={"content-type": "text/csv"}
        )
        assert bad.status_code == 422, body
    no_file = client.post("/v1/models/churn/predict", files={"other": ("x.csv", b"a\n1\n")})
    assert no_file.status_code == 422 and "'file'" in no_file.json()["error"]["message"]


def test_digit_images(client: TestClient) -> None:
    images = load_digit_images()[:20]
    right = 0
    for image in images:
        data = image.path.read_bytes()
        response = client.post(
            "/v1/models/digits/predict", content=data, headers={"content-type": "image/png"}
        )
        assert response.status_code == 200
        right += response.json()["predictions"][0]["label"] == image.label
    assert right >= 18  # 97 % on the 100 shipped images
    upload = client.post(
        "/v1/models/digits/predict",
        files={"file": ("d.png", images[0].path.read_bytes(), "image/png")},
    )
    assert upload.json()["predictions"][0]["label"] == images[0].label
    junk = client.post(
        "/v1/models/digits/predict", content=b"not a png", headers={"content-type": "image/png"}
    )
    assert junk.status_code == 422 and "PNG/JPEG" in junk.json()["error"]["details"][0]["message"]
    tabular = client.post(
        "/v1/models/churn/predict",
        content=images[0].path.read_bytes(),
        headers={"content-type": "image/png"},
    )
    assert tabular.status_code == 415
    pixels = client.post("/v1/models/digits/predict", json={"records": [{"pixels": [0.0] * 63}]})
    assert (
        pixels.status_code == 422
        and "at least 64" in pixels.json()["error"]["details"][0]["message"]
    )


def test_mlflow_protocol(client: TestClient, rows: pd.DataFrame) -> None:
    recs = records(rows.head(3))
    expected = [
        p["label"]
        for p in client.post(
            "/v1/models/churn/versions/1.0.0/predict", json={"records": recs}
        ).json()["predictions"]
    ]
    columns = list(recs[0])
    bodies = [
        {"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in recs]}},
        {"dataframe_records": recs},
        {"instances": recs},
        {"inputs": recs},
        {"inputs": {c: [r[c] for r in recs] for c in columns}},
    ]
    for body in bodies:
        response = client.post("/invocations", json=body)
        assert response.json() == {"predictions": expected}, body  # 1.0.0 is the first loaded
    csv = client.post(
        "/invocations",
        content=rows.head(3).to_csv(index=False),
        headers={"content-type": "text/csv"},
    )
    assert csv.json() == {"predictions": expected}
    wrong = client.post("/invocations", json={"records": recs})
    assert wrong.status_code == 400 and wrong.json()["error_code"] == "BAD_REQUEST"
    invalid = client.post("/invocations", json={"instances": [{**recs[0], "contract": "weekly"}]})
    assert invalid.status_code == 400 and "contract" in invalid.json()["message"]
    media = client.post("/invocations", content=b"x", headers={"content-type": "text/plain"})
    assert media.status_code == 415 and media.headers["content-type"].startswith("text/plain")
    assert client.get("/ping").status_code == 200
    assert client.get("/version").text == "3.17.2"


def test_tf_serving_protocol(client: TestClient, rows: pd.DataFrame) -> None:
    recs = records(rows.head(2))
    row = client.post("/v1/models/churn:predict", json={"instances": recs})
    predictions = row.json()["predictions"]
    assert len(predictions) == 2 and set(predictions[0]) == {"label", "probabilities"}
    columnar = client.post(
        "/v1/models/churn/versions/1:predict",  # integer = highest 1.x.y
        json={
            "inputs": {c: [r[c] for r in recs] for c in recs[0]},
            "signature_name": "serving_default",
        },
    ).json()["outputs"]
    assert columnar["label"] == [p["label"] for p in predictions]
    pixels = [[0.0] * 64, [16.0] * 64]
    digits = client.post("/v1/models/digits:predict", json={"instances": pixels}).json()
    assert len(digits["predictions"][0]["probabilities"]) == 10
    missing = client.post("/v1/models/nope:predict", json={"instances": recs})
    assert missing.status_code == 404 and "Servable not found" in missing.json()["error"]
    bad = client.post("/v1/models/churn:predict", json={"instances": recs, "inputs": {}})
    assert bad.status_code == 400 and "exactly one" in bad.json()["error"]
    invalid = client.post(
        "/v1/models/churn:predict", json={"instances": [{**recs[0], "contract": 1}]}
    )
    assert invalid.status_code == 400 and "contract" in invalid.json()["error"]
    assert client.post("/v1/models/churn:classify", json={}).status_code == 404


def test_kserve_v2_json_and_binary(client: TestClient, rows: pd.DataFrame) -> None:
    import struct

    meta = client.get("/v2/models/churn").json()
    assert meta["platform"] == "onnxruntime_onnx" and meta["versions"] == ["1.0.0", "1.1.0"]
    types = {i["name"]: i["datatype"] for i in meta["inputs"]}
    assert types["contract"] == "BYTES" and types["tenure_months"] == "INT64"
    recs = records(rows.head(3))
    inputs = [
        {"name": c, "shape": [3, 1], "datatype": types[c], "data": [r[c] for r in recs]}
        for c in recs[0]
    ]
    body = client.post(
        "/v2/models/churn/versions/1.0.0/infer", json={"id": "a1", "inputs": inputs}
    ).json()
    assert body["id"] == "a1" and body["model_version"] == "1.0.0"
    labels = body["outputs"][0]["data"]
    # the same request in the binary tensor extension, asking for binary probabilities
    header: dict[str, Any] = {
        "inputs": [],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
    }
    blobs = b""
    for c in recs[0]:
        values = [r[c] for r in recs]
        if types[c] == "BYTES":
            raw = b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)
        elif types[c] == "INT64":
            raw = np.array(values, dtype="<i8").tobytes()
        else:
            raw = np.array(values, dtype="<f8").tobytes()
        header["inputs"].append(
            {
                "name": c,
                "shape": [3, 1],
                "datatype": types[c],
                "parameters": {"binary_data_size": len(raw)},
            }
        )
        blobs += raw
    head = json.dumps(header).encode()
    response = client.post(
        "/v2/models/churn/versions/1.0.0/infer",
        content=head + blobs,
        headers={
            "inference-header-content-length": str(len(head)),
            "content-type": "application/octet-stream",
        },
    )
    length = int(response.headers["inference-header-content-length"])
    out = json.loads(response.content[:length])["outputs"][0]
    proba = np.frombuffer(response.content[length:], dtype="<f4").reshape(out["shape"])
    assert proba.shape == (3, 2) and list(proba.argmax(1)) == labels
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2/models/churn/ready").json()["ready"] is True
    bad = client.post(
        "/v2/models/churn/infer",
        json={"inputs": [{"name": "contract", "shape": [2], "datatype": "BYTES", "data": ["x"]}]},
    )
    assert bad.status_code == 400 and "shape" in bad.json()["error"]
    assert client.post("/v2/models/nope/infer", json={"inputs": []}).status_code == 404


def test_metrics_and_access_log(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="course_pkg.access"):
        client.post(
            "/v1/models/churn/predict", json={"records": [GOOD]}, headers={"x-request-id": "log-me"}
        )
        client.post("/v1/models/churn/predict", json={"records": [{**GOOD, "contract": "x"}]})
        client.app.state.access_log.flush()  # type: ignore[attr-defined]  # written in batches
    access = [r for r in caplog.records if r.name == "course_pkg.access"]
    lines = [line for r in access for line in r.message.splitlines()]
    line = json.loads(next(line for line in lines if "log-me" in line))
    assert len(lines) >= 2 and all(json.loads(one)["ts"] > 0 for one in lines)  # one per request
    assert line["status"] == 200 and line["model"] == "churn" and line["version"] == "1.1.0"
    assert line["route"] == "/v1/models/{name}/predict" and line["ms"] > 0
    text = client.get("/metrics").text
    assert 'course_model_info{name="digits",sha256=' in text
    assert (
        'course_errors_total{code="invalid_input",route="/v1/models/{name}/predict",status="422"}'
        in text
    )
    ok = [
        line
        for line in text.splitlines()
        if line.startswith("course_requests_total")
        and 'status="200"' in line
        and 'version="1.1.0"' in line
    ]
    assert ok and float(ok[0].split()[-1]) >= 1
    assert (
        "course_request_duration_seconds_bucket" in text and "course_predicted_rows_total" in text
    )


def test_openapi_shows_real_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    body = spec["paths"]["/v1/models/churn/predict"]["post"]["requestBody"]["content"]
    example = body["application/json"]["example"]["records"]
    assert len(example) == 2 and example[0]["contract"] in {
        "month-to-month",
        "one-year",
        "two-year",
    }
    records = schemas[body["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]]
    items = schemas[records["properties"]["records"]["items"]["$ref"].rsplit("/", 1)[-1]]
    assert items["properties"]["contract"]["enum"] == ["month-to-month", "one-year", "two-year"]
    for path in ("/invocations", "/v2/models/churn/infer", "/v1/models/churn:predict", "/metrics"):
        assert path in spec["paths"]


def _binary(header: dict[str, Any], blob: bytes) -> tuple[bytes, dict[str, str]]:
    """A KServe binary-extension body: JSON header, then raw tensor bytes."""
    head = json.dumps(header).encode()
    return head + blob, {"inference-header-content-length": str(len(head))}


def _one_input(datatype: str, size: int, name: str = "tenure_months") -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": name,
                "shape": [1],
                "datatype": datatype,
                "parameters": {"binary_data_size": size},
            }
        ]
    }


MALFORMED: list[tuple[str, bytes, dict[str, str]]] = [
    ("/v2/models/churn/infer", *_binary(_one_input("INT64", 3), b"xyz")),  # not whole int64s
    ("/v2/models/churn/infer", *_binary(_one_input("BYTES", 5, "contract"), b"\x01\0\0\0\xff")),
    ("/v2/models/churn/infer", *_binary(_one_input("BYTES", 4, "contract"), b"\x09\0\0\0")),
    ("/v2/models/churn/infer", *_binary(_one_input("INT64", -4), b"")),
    ("/v2/models/churn/infer", *_binary(_one_input("FP99", 4), b"abcd")),
    ("/v2/models/churn/infer", b"{}", {"inference-header-content-length": "999"}),
    (
        "/v2/models/churn/infer",
        b'{"inputs": [{"name": "contract", "shape": ["a"], "datatype": "BYTES", "data": ["x"]}]}',
        {},
    ),
    (
        "/v2/models/churn/infer",
        b'{"inputs": [{"name": "contract", "shape": [-1], "datatype": "BYTES", "data": ["x"]}]}',
        {},
    ),
    (
        "/v2/models/churn/infer",
        b'{"inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": [1], "parameters": 5}]}',  # noqa: E501
        {},
    ),
    ("/v2/models/churn/infer", b'{"inputs": "x"}', {}),
    ("/v2/models/churn/infer", b'{"inputs": [1]}', {}),
    ("/v2/models/churn/infer", b'{"inputs": [], "outputs": "label"}', {}),
    (  # an input name that is not a string (schemathesis found it: was a 500)
        "/v2/models/churn/infer",
        b'{"inputs": [{"name": {}, "shape": [], "datatype": "BYTES", "data": [null, null], '
        b'"parameters": {"binary_data_size": 0}}]}',
        {},
    ),
    (  # request parameters that are not an object (schemathesis found it: was a 500)
        "/v2/models/digits/infer",
        json.dumps(
            {
                "inputs": [
                    {"name": "pixels", "datatype": "FP32", "shape": [1, 64], "data": [0] * 64}
                ],
                "parameters": [None],
            }
        ).encode(),
        {},
    ),
    (  # an output name that is not a string (schemathesis found it: was a 500)
        "/v2/models/digits/infer",
        json.dumps(
            {
                "inputs": [
                    {"name": "pixels", "datatype": "FP32", "shape": [1, 64], "data": [0] * 64}
                ],
                "outputs": [{"name": {}}],
            }
        ).encode(),
        {},
    ),
    ("/invocations", b'{"dataframe_split": {"columns": 3, "data": [[1]]}}', {}),
    ("/invocations", b'{"dataframe_split": {"columns": [[1]], "data": [[1]]}}', {}),
    ("/invocations", b'{"inputs": {"a": [1], "b": [1, 2]}}', {}),
    ("/invocations", b'{"instances": [1, 2]}', {}),
    ("/invocations", b"[1]", {}),
    ("/v1/models/churn:predict", b'{"instances": [1, 2]}', {}),
    ("/v1/models/churn:predict", b'{"inputs": {"contract": "x"}}', {}),
    ("/v1/models/churn:predict", b"[]", {}),
    ("/v1/models/digits:predict", json.dumps({"instances": [["a"] * 64]}).encode(), {}),
    ("/v1/models/churn/predict", b'{"records": [[1, 2]]}', {}),
    ("/v1/models/churn/predict", b'{"records": [{"contract": {"a": 1}}]}', {}),
    ("/v1/models/churn/predict", "\ud800".encode("utf-8", "surrogatepass"), {}),
]


@pytest.mark.parametrize(("path", "body", "headers"), MALFORMED)
def test_malformed_protocol_bodies_are_4xx_never_5xx(
    client: TestClient, path: str, body: bytes, headers: dict[str, str]
) -> None:
    response = client.post(
        path, content=body, headers={"content-type": "application/json", **headers}
    )
    assert 400 <= response.status_code < 500, (path, body, response.status_code, response.text)


def test_jobs_are_off_without_redis_and_say_how_to_turn_them_on(client: TestClient) -> None:
    for response in (
        client.post("/v1/jobs", json={"model": "churn", "records": []}),
        client.get("/v1/jobs/some-id"),
    ):
        assert response.status_code == 404
        error = response.json()["error"]
        assert error["code"] == "jobs_disabled" and "COURSE_SERVE_REDIS_URL" in error["message"]
