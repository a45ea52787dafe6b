"""deploy/ray's KubeRay RayJob, checked offline: what KubeRay needs, and each pod template
against the Kubernetes API schemas (strict: a misspelt field is an error). No cluster."""

from __future__ import annotations

import copy
import shlex
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from course_pkg.cli import build_parser
from course_pkg.kubernetes import KUBERNETES_VERSION

MANIFEST = Path(__file__).parents[2] / "deploy" / "ray" / "fraud-batch-rayjob.yaml"


def check_rayjob(job: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming what is wrong with a RayJob for ``course-pkg batch-score``."""
    if (job.get("apiVersion"), job.get("kind")) != ("ray.io/v1", "RayJob"):
        raise ValueError("not a ray.io/v1 RayJob")
    spec = job["spec"]
    args = build_parser().parse_args(shlex.split(spec["entrypoint"])[1:])  # argparse exits if bad
    if args.engine != "ray" or args.address != "auto":
        raise ValueError("the entrypoint must run --engine ray --address auto on the job's cluster")
    cluster = spec["rayClusterSpec"]
    import ray

    if cluster["rayVersion"] != ray.__version__:
        raise ValueError(f"rayVersion {cluster['rayVersion']} != the lock's ray {ray.__version__}")
    groups = [("head", cluster["headGroupSpec"])] + [
        (group["groupName"], group) for group in cluster["workerGroupSpecs"]
    ]
    for name, group in groups:
        template = {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": name},
            "template": group["template"],
        }
        try:
            kubernetes_validate.validate(template, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(p) for p in error.path)
            raise ValueError(f"{name} pod template: {where}: {error.message}") from None
        mounts = {
            m["mountPath"]
            for c in group["template"]["spec"]["containers"]
            for m in c.get("volumeMounts", [])
        }
        if "/data" not in mounts:
            raise ValueError(f"{name}: every node reads the input and writes parts under /data")


def shipped() -> dict[str, Any]:
    job: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    return job


def test_the_shipped_rayjob_validates() -> None:
    check_rayjob(shipped())


def test_a_misspelt_pod_field_is_caught() -> None:
    job = copy.deepcopy(shipped())
    job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0][
        "resource"
    ] = {"limits": {"cpu": "2"}}
    with pytest.raises(ValueError, match="scorers pod template"):
        check_rayjob(job)


def test_an_entrypoint_on_the_local_engine_is_caught() -> None:
    job = copy.deepcopy(shipped())
    job["spec"]["entrypoint"] = job["spec"]["entrypoint"].replace("--engine ray", "")
    with pytest.raises(ValueError, match="--engine ray"):
        check_rayjob(job)
