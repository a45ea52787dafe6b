"""Folders to deploy outside the course: a Hugging Face Space and an Azure ML deployment.

    build_space("build/space", churn_package, digits_package)   # git push to a Space
    build_azureml("build/azureml", churn_package)               # az ml online-deployment create

Both carry the course's own demo code (``course_pkg/demos``, copied as the package
``course_demo``: it imports nothing else from ``course_pkg``), the model packages with their
manifests (hashes are checked at load), and requirements pinned to the versions this course
runs (its lock file). A Space runs ``python app.py`` after installing ``requirements.txt``
and the Gradio version named in the README's front matter; Azure ML runs ``score.py`` under
``azureml-inference-server-http`` in the image the deployment names.
"""

from __future__ import annotations

import re
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

DEMOS = Path(__file__).resolve().parent / "demos"
SPACE_FILES = ("__init__.py", "inference.py", "gradio_app.py")
AZURE_FILES = ("__init__.py", "inference.py", "azureml_score.py")
RUNTIME = ("numpy", "onnxruntime", "pillow")  # what course_demo imports besides the UI
SPACE_COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
SPACE_SDKS = {"gradio", "streamlit", "docker", "static"}
# Azure ML's Python 3.11 inference base (the azureml-assets environment
# minimal-py311-inference). Deploy it by digest, as notebook 06 deploys by digest: a tag
# such as :latest moves. No registry outside this machine answers here, so no digest could
# be read and none is invented: the placeholder makes check_azure_deployment fail until
# the deployer fills in the digest read from MCR (see AZURE_DIGEST_HOWTO).
AZURE_INFERENCE_REPOSITORY = "mcr.microsoft.com/azureml/minimal-py311-inference"
AZURE_DIGEST_PLACEHOLDER = "sha256:FILL-IN-THE-DIGEST"
AZURE_INFERENCE_IMAGE = f"{AZURE_INFERENCE_REPOSITORY}@{AZURE_DIGEST_PLACEHOLDER}"
AZURE_DIGEST_HOWTO = (
    f"read it with `docker buildx imagetools inspect {AZURE_INFERENCE_REPOSITORY}:<tag>` "
    "(tags: https://mcr.microsoft.com/v2/azureml/minimal-py311-inference/tags/list) and pass "
    "build_azureml(..., image='REPOSITORY@sha256:<64 hex digits>')"
)
_DIGEST = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")


def pins(names: tuple[str, ...]) -> list[str]:
    """``name==version`` as installed here (the course lock's versions)."""
    return [f"{name}=={metadata.version(name)}" for name in names]


def _copy_demo(out: Path, files: tuple[str, ...]) -> None:
    package = out / "course_demo"
    package.mkdir(parents=True, exist_ok=True)
    for name in files:
        shutil.copy2(DEMOS / name, package / name)


def _copy_package(source: Path, target: Path) -> None:
    shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.skops"))


def space_header(title: str = "Course models", short_description: str = "") -> dict[str, Any]:
    """The README front matter Spaces reads (https://huggingface.co/docs/hub/spaces-config-reference)."""
    return {
        "title": title,
        "emoji": "📦",
        "colorFrom": "blue",
        "colorTo": "green",
        "sdk": "gradio",
        "sdk_version": metadata.version("gradio"),
        "python_version": "3.11",
        "app_file": "app.py",
        "pinned": False,
        "license": "mit",
        "short_description": short_description or "Churn and digits models, ONNX",
    }


def front_matter(text: str) -> tuple[dict[str, Any], str]:
    """(header, body) of a README with YAML front matter; ``ValueError`` saying what is wrong."""
    if not text.startswith("---\n"):
        raise ValueError("the README must start with a '---' line (YAML front matter)")
    end = text.find("\n---", 4)
    if end < 0:
        raise ValueError("the front matter has no closing '---' line")
    try:
        header = yaml.safe_load(text[4:end])
    except yaml.YAMLError as error:
        raise ValueError(f"the front matter is not YAML: {error}") from None
    if not isinstance(header, dict):
        raise ValueError("the front matter must be key: value lines")
    return header, text[end + 4 :]


def check_space_readme(text: str) -> list[str]:
    """Problems with a Space README's front matter (empty: Spaces would accept it)."""
    try:
        header, _ = front_matter(text)
    except ValueError as error:
        return [str(error)]
    problems = [f"missing {key!r}" for key in ("title", "sdk") if key not in header]
    if header.get("sdk") not in SPACE_SDKS:
        problems.append(f"sdk must be one of {sorted(SPACE_SDKS)}")
    if header.get("sdk") in {"gradio", "streamlit"}:
        version = str(header.get("sdk_version", ""))
        if not version or not all(part.isdigit() for part in version.split(".")):
            problems.append("sdk_version must pin the SDK (e.g. 6.31.0): Spaces installs it")
        if not str(header.get("app_file", "")).endswith(".py"):
            problems.append("app_file must name the Python file Spaces runs")
    for key in ("colorFrom", "colorTo"):
        if key in header and header[key] not in SPACE_COLORS:
            problems.append(f"{key} must be one of {sorted(SPACE_COLORS)}")
    if len(str(header.get("short_description", ""))) > 60:
        problems.append("short_description is at most 60 characters")
    if "python_version" in header and not isinstance(header["python_version"], str):
        problems.append('python_version must be quoted ("3.11"), or YAML reads 3.10 as 3.1')
    return problems


def build_space(out: str | Path, churn: str | Path, digits: str | Path) -> Path:
    """A Gradio Space running the course's Gradio app on the two ONNX packages."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _copy_demo(out, SPACE_FILES)
    _copy_package(Path(churn), out / "models" / "churn")
    _copy_package(Path(digits), out / "models" / "digits")
    (out / "app.py").write_text(
        '"""Hugging Face Spaces runs this file: the course\'s Gradio app (course_demo)."""\n\n'
        "from course_demo.gradio_app import main\n\n"
        "main()\n"
    )
    # Spaces installs gradio itself, at the README's sdk_version: it is not listed here.
    (out / "requirements.txt").write_text("\n".join(pins(RUNTIME)) + "\n")
    front = yaml.safe_dump(space_header(), sort_keys=False, allow_unicode=True)
    (out / "README.md").write_text(
        f"---\n{front}---\n\n# Course models\n\nThe course's Gradio demo for its churn and "
        "digits models, run with onnxruntime from the packaged ONNX files (sha256-checked "
        "against each package's manifest at start).\n"
    )
    return out


def azure_deployment(model_name: str, image: str = AZURE_INFERENCE_IMAGE) -> dict[str, Any]:
    """The managed online deployment (``az ml online-deployment create -f deployment.yml``)."""
    return {
        "$schema": "https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json",
        "name": "blue",
        "endpoint_name": f"{model_name}-endpoint",
        "model": {"name": model_name, "path": "model"},
        "code_configuration": {"code": ".", "scoring_script": "score.py"},
        "environment": {
            "name": f"{model_name}-onnx",
            "image": image,
            "conda_file": "environment/conda.yml",
        },
        "instance_type": "Standard_DS2_v2",
        "instance_count": 2,
        "request_settings": {"request_timeout_ms": 5000, "max_concurrent_requests_per_instance": 1},
        "liveness_probe": {"initial_delay": 10, "period": 10, "timeout": 2},
        "readiness_probe": {"initial_delay": 10, "period": 10, "timeout": 2},
    }


def azure_endpoint(model_name: str) -> dict[str, Any]:
    return {
        "$schema": "https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json",
        "name": f"{model_name}-endpoint",
        "auth_mode": "key",
    }


# The fields of Azure's managedOnlineDeployment schema this deployment uses, written from its
# documentation (the real schema lives online, and `az ml` validates against the service):
# a shape check that catches typos and wrong types offline, not a substitute for Azure's.
DEPLOYMENT_SHAPE: dict[str, Any] = {
    "type": "object",
    "required": ["name", "endpoint_name", "model", "code_configuration", "environment"],
    "additionalProperties": False,
    "properties": {
        "$schema": {"type": "string"},
        "name": {"type": "string", "pattern": "^[a-zA-Z][a-zA-Z0-9-]{2,31}$"},
        "endpoint_name": {"type": "string", "pattern": "^[a-zA-Z][a-zA-Z0-9-]{2,31}$"},
        "description": {"type": "string"},
        "model": {
            "type": "object",
            "required": ["path"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "path": {"type": "string"},
            },
        },
        "code_configuration": {
            "type": "object",
            "required": ["code", "scoring_script"],
            "additionalProperties": False,
            "properties": {"code": {"type": "string"}, "scoring_script": {"type": "string"}},
        },
        "environment": {
            "type": "object",
            "required": ["image"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "image": {"type": "string"},
                "conda_file": {"type": "string"},
            },
        },
        "instance_type": {"type": "string"},
        "instance_count": {"type": "integer", "minimum": 1},
        "request_settings": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "request_timeout_ms": {"type": "integer", "minimum": 1, "maximum": 180000},
                "max_concurrent_requests_per_instance": {"type": "integer", "minimum": 1},
                "max_queue_wait_ms": {"type": "integer", "minimum": 0},
            },
        },
        "liveness_probe": {"$ref": "#/$defs/probe"},
        "readiness_probe": {"$ref": "#/$defs/probe"},
    },
    "$defs": {
        "probe": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                k: {"type": "integer", "minimum": 1}
                for k in ("initial_delay", "period", "timeout", "success_threshold")
            }
            | {"failure_threshold": {"type": "integer", "minimum": 1}},
        }
    },
}


def check_azure_deployment(folder: str | Path) -> list[str]:
    """Shape problems in ``deployment.yml`` and the files it names (empty: none found)."""
    import jsonschema

    folder = Path(folder)
    deployment = yaml.safe_load((folder / "deployment.yml").read_text())
    validator = jsonschema.Draft202012Validator(DEPLOYMENT_SHAPE)
    problems = [
        f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in validator.iter_errors(deployment)
    ]
    if problems:
        return problems
    code = folder / deployment["code_configuration"]["code"]
    named = {
        "scoring_script": code / deployment["code_configuration"]["scoring_script"],
        "model.path": folder / deployment["model"]["path"] / "manifest.json",
        "environment.conda_file": folder / deployment["environment"].get("conda_file", ""),
    }
    problems += [
        f"{key}: {path} does not exist" for key, path in named.items() if not path.is_file()
    ]
    image = deployment["environment"]["image"]
    if not _DIGEST.match(image):
        problems.append(f"environment.image: {image} is not pinned by digest; {AZURE_DIGEST_HOWTO}")
    endpoint = yaml.safe_load((folder / "endpoint.yml").read_text())
    if endpoint.get("name") != deployment["endpoint_name"]:
        problems.append("endpoint.yml's name differs from deployment.yml's endpoint_name")
    return problems


def build_azureml(out: str | Path, package: str | Path, image: str = AZURE_INFERENCE_IMAGE) -> Path:
    """score.py + course_demo + model/ + environment/conda.yml + endpoint and deployment.

    ``image`` is the inference base, by digest; the default is a placeholder that
    check_azure_deployment reports until it is filled in.
    """
    import json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _copy_demo(out, AZURE_FILES)
    _copy_package(Path(package), out / "model")
    manifest = json.loads((Path(package) / "manifest.json").read_text())
    (out / "score.py").write_text(
        '"""Azure ML entry script: init() and run() from the course\'s scoring module."""\n\n'
        "from course_demo.azureml_score import init, run\n\n"
        '__all__ = ["init", "run"]\n'
    )
    conda = {
        "name": "course-onnx",
        "channels": ["conda-forge"],
        "dependencies": [
            "python=3.11",
            "pip",
            {"pip": pins(("azureml-inference-server-http", *RUNTIME))},
        ],
    }
    (out / "environment").mkdir(exist_ok=True)
    (out / "environment" / "conda.yml").write_text(yaml.safe_dump(conda, sort_keys=False))
    name = manifest["name"]
    (out / "endpoint.yml").write_text(yaml.safe_dump(azure_endpoint(name), sort_keys=False))
    deployment = azure_deployment(name, image)
    (out / "deployment.yml").write_text(yaml.safe_dump(deployment, sort_keys=False))
    return out
