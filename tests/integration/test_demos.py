"""Demo apps in a real headless Chromium; the Space folder run as Spaces runs it; Azure ML's
own inference server running the scoring script, called over HTTP."""

from __future__ import annotations

import ast
import json
import shutil
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from course_pkg import deploy_folders
from course_pkg.browser import wait_for_text, wait_for_value, wait_until
from course_pkg.checks.nb04 import GOOD
from course_pkg.datasets.digits import load_digit_images
from course_pkg.demo_process import GradioApp, StreamlitApp
from course_pkg.servers.azureml_local import AzureMLServer
from course_pkg.serving.process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "screenshots"
DIGIT = load_digit_images()[3]  # a 5


@pytest.fixture(scope="module")
def packages(model_packages: dict[str, Path]) -> dict[str, str]:
    return {"COURSE_DEMO_CHURN": str(model_packages["churn"]),
            "COURSE_DEMO_DIGITS": str(model_packages["digits"])}  # fmt: skip


def click(browser: Any, xpath: str) -> None:
    browser.find_element("xpath", xpath).click()


def open_tab(browser: Any, name: str) -> None:
    click(browser, f"//*[@role='tab' and contains(., '{name}')]")


def upload(browser: Any, path: Path, preview: str | None = None) -> None:
    """Send the file to the page's file input; wait for the preview ``preview`` (CSS)."""
    browser.find_element("css selector", "input[type=file]").send_keys(str(path.resolve()))
    if preview:
        wait_until(lambda: browser.find_elements("css selector", preview), "the upload preview")


def test_streamlit_app_with_the_onnx_packages(browser: Any, packages: dict[str, str]) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with StreamlitApp(env=packages) as app:
        browser.get(app.url)
        wait_for_text(browser, "Predict churn")
        click(browser, "//button[contains(., 'Predict churn')]")
        wait_for_text(browser, "Prediction: churn 1.0.0 says 0")  # the form starts at the example
        wait_for_text(browser, "served by onnx")
        browser.save_screenshot(str(SHOTS / "streamlit_churn.png"))
        open_tab(browser, "Digits")
        upload(browser, DIGIT.path)
        wait_for_text(browser, f"Prediction: digits 1.0.0 says {DIGIT.label}")
        wait_for_text(browser, "served by onnx")
        browser.save_screenshot(str(SHOTS / "streamlit_digits.png"))
    assert app.returncode == 0, app.output()


def test_gradio_app_calling_the_reference_server(
    browser: Any, model_packages: dict[str, Path]
) -> None:
    with ServerProcess([model_packages["churn"], model_packages["digits"]]) as server:
        with GradioApp(env={"COURSE_DEMO_SERVER": server.url}) as app:
            browser.get(app.url)
            wait_for_text(browser, "Predict churn")
            click(browser, "//button[contains(., 'Predict churn')]")
            assert "churn 1.0.0 says 0" in wait_for_value(browser, "#churn-result textarea", "says")
            browser.save_screenshot(str(SHOTS / "gradio_churn.png"))
            open_tab(browser, "Digits")
            upload(browser, DIGIT.path, preview="[data-testid=image] img")
            click(browser, "//button[contains(., 'Read the digit')]")
            said = wait_for_value(browser, "#digit-result textarea", "says")
            assert f"digits 1.0.0 says {DIGIT.label}" in said
            browser.save_screenshot(str(SHOTS / "gradio_digits.png"))
        metrics = httpx.get(f"{server.url}/metrics").text
    # the answers came from the server: it counted one row for each model
    assert 'course_predicted_rows_total{model="churn",version="1.0.0"} 1.0' in metrics
    assert 'course_predicted_rows_total{model="digits",version="1.0.0"} 1.0' in metrics


@pytest.fixture(scope="module")
def space(model_packages: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("space")
    return deploy_folders.build_space(out, model_packages["churn"], model_packages["digits"])


def test_space_folder_is_complete_and_pinned(space: Path) -> None:
    assert deploy_folders.check_space_readme((space / "README.md").read_text()) == []
    header, _ = deploy_folders.front_matter((space / "README.md").read_text())
    assert header["sdk_version"] == metadata.version("gradio")
    pinned = dict(line.split("==") for line in (space / "requirements.txt").read_text().split())
    assert pinned == {name: metadata.version(name) for name in deploy_folders.RUNTIME}
    # every module the folder imports is the standard library, the folder's own, gradio
    # (installed by Spaces from sdk_version) or pinned in requirements.txt
    distributions = metadata.packages_distributions()
    allowed = {"gradio", *pinned}
    for source in space.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = (
                [a.name for a in getattr(node, "names", [])] if isinstance(node, ast.Import) else []
            )
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "course_demo":
                    continue
                owners = {d.lower() for d in distributions.get(top, [])}
                assert owners & allowed, f"{source.name} imports {top}, not in requirements"
    assert not list(space.rglob("*.skops"))  # ONNX only: nothing that unpickles


def test_space_runs_the_way_spaces_runs_it(space: Path) -> None:
    from gradio_client import Client

    with GradioApp(space=space) as app:
        client = Client(app.url, verbose=False)
        values = [GOOD[field["name"]] for field in deploy_folders_schema(space)]
        probabilities, headline = client.predict(*values, api_name="/predict_churn")
        assert headline.startswith("churn 1.0.0 says") and probabilities["label"] in {"0", "1"}
        from gradio_client import handle_file

        _, said = client.predict(handle_file(str(DIGIT.path)), api_name="/predict_digit")
        assert said.startswith(f"digits 1.0.0 says {DIGIT.label}")


def deploy_folders_schema(space: Path) -> list[dict[str, Any]]:
    manifest = json.loads((space / "models" / "churn" / "manifest.json").read_text())
    return list(manifest["input_schema"])


def test_space_readme_checker_names_each_problem() -> None:
    good = "---\n" + yaml.safe_dump(deploy_folders.space_header()) + "---\n# hi\n"
    assert deploy_folders.check_space_readme(good) == []
    cases = {
        "# no header": "must start with",
        "---\ntitle: x\nsdk: gradio\n": "no closing",
        "---\ntitle: x\nsdk: flask\n---\n": "sdk must be one of",
        "---\ntitle: x\nsdk: gradio\napp_file: app.py\n---\n": "sdk_version",
        "---\ntitle: x\nsdk: gradio\nsdk_version: 6.31.0\n---\n": "app_file",
        "---\nsdk: static\n---\n": "missing 'title'",
        "---\ntitle: x\nsdk: static\ncolorFrom: teal\n---\n": "colorFrom",
        "---\ntitle: x\nsdk: static\npython_version: 3.10\n---\n": "quoted",
    }
    for text, words in cases.items():
        problems = deploy_folders.check_space_readme(text)
        assert any(words in p for p in problems), (text, problems)


@pytest.fixture(scope="module")
def azure_folder(model_packages: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("azureml")
    # A well-formed digest (the checker reads its shape; nothing is pulled here).
    pinned = f"{deploy_folders.AZURE_INFERENCE_REPOSITORY}@sha256:{'0' * 64}"
    return deploy_folders.build_azureml(out, model_packages["churn"], image=pinned)


@pytest.fixture(scope="module")
def azure(azure_folder: Path) -> Iterator[AzureMLServer]:
    with AzureMLServer(azure_folder) as server:
        yield server
    assert server.returncode == 0, server.output()


def test_azure_scoring_script_under_azmlinfsrv(azure: AzureMLServer) -> None:
    assert httpx.get(azure.url + "/").status_code == 200  # liveness
    answer = httpx.post(azure.url + "/score", json={"data": [GOOD, {**GOOD, "tenure_months": 60}]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["model"], body["version"]) == ("churn", "1.0.0")
    assert [p["label"] in (0, 1) for p in body["predictions"]] == [True, True]
    assert abs(sum(body["predictions"][0]["probabilities"].values()) - 1) < 1e-5
    for bad, words in [
        (b"not json", "not JSON"),
        (b'{"rows": []}', "non-empty list"),
        (b'{"data": [{"tenure_months": 3}]}', "missing field"),
        (b'{"data": [' + b",".join([b"{}"] * 1001) + b"]}", "at most 1000"),
    ]:
        response = httpx.post(
            azure.url + "/score", content=bad, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400 and words in response.json()["error"], response.text


def test_azure_deployment_yaml_shape(
    azure_folder: Path, model_packages: dict[str, Path], tmp_path: Path
) -> None:
    # The default image is a placeholder digest: the check refuses it, and a moving tag.
    for n, image in enumerate((deploy_folders.AZURE_INFERENCE_IMAGE, "mcr.microsoft.com/x:latest")):
        folder = deploy_folders.build_azureml(tmp_path / str(n), model_packages["churn"], image)
        problems = deploy_folders.check_azure_deployment(folder)
        assert len(problems) == 1 and f"{image} is not pinned by digest" in problems[0], problems
    broken = tmp_path / "broken"
    shutil.copytree(azure_folder, broken)
    deployment = yaml.safe_load((broken / "deployment.yml").read_text())
    deployment["instance_count"] = "two"
    deployment["code_configuration"]["scoring_script"] = "scor.py"
    deployment["enviroment"] = deployment.pop("environment")
    (broken / "deployment.yml").write_text(yaml.safe_dump(deployment))
    problems = " | ".join(deploy_folders.check_azure_deployment(broken))
    assert "'environment' is a required property" in problems
    assert "'enviroment' was unexpected" in problems and "instance_count" in problems
    deployment["environment"] = deployment.pop("enviroment")
    deployment["instance_count"] = 1
    (broken / "deployment.yml").write_text(yaml.safe_dump(deployment))
    assert deploy_folders.check_azure_deployment(broken) == [
        f"scoring_script: {broken / 'scor.py'} does not exist"
    ]
