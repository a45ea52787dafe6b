"""Kubernetes manifests for the server image, sized from measured throughput, schema-checked.

    >>> plan = plan_capacity(peak_rps=8_000, per_core_rps=4_000)  # measured, one worker/core
    >>> plan.replicas, plan.min_replicas, plan.max_replicas  # plan.explain() says why
    (5, 2, 10)
    >>> docs = manifests("course-model-server:1.0.0", plan)
    >>> [doc["kind"] for doc in docs]
    ['Deployment', 'Service', 'HorizontalPodAutoscaler', 'PodDisruptionBudget']
    >>> validate(docs)  # the API schemas, offline; raises ValueError naming what is wrong
    >>> print(to_yaml(docs))  # for kubectl apply -f - (not here)  # doctest: +ELLIPSIS
    apiVersion: apps/v1
    kind: Deployment
    ...

(tests/unit/test_docstring_examples.py runs these lines.)

**Sizing.** One pod runs one server worker on one core (``COURSE_SERVE_WORKERS=1``): the
process is single-threaded on its hot path, so a core is the unit of capacity, and the admin
API's routing is per process. A pod's capacity is the measured per-core throughput times the
target utilisation (0.6 by default: headroom for bursts, and the HPA's scaling target, so
scaling starts before latency climbs). ``replicas = ceil(peak / (per_core × utilisation))``,
plus one spare so a node drain or a rollout at peak stays within the SLA (N+1), and never
fewer than two (one pod is an outage during every rollout). The HPA may double that at most.

**Resources.** CPU request = limit = 1 core (the worker cannot use more; Guaranteed QoS, so
the pod is evicted last). Memory: the server measured ~170 MiB RSS with the churn model
loaded (``psutil`` on ``course-pkg serve``); request 256 MiB, limit 512 MiB for JSON batches
up to ``max_rows`` and CSV spooling (8 MiB in memory per upload, then /tmp).

Probes map to the server's routes: startup and readiness on ``/health/ready`` (503 until
every model is verified and warmed), liveness on ``/health/live`` (answers while loading, so
a slow load is never killed as "dead"). ``terminationGracePeriodSeconds`` exceeds the
server's graceful shutdown, and a short preStop sleep lets the Service stop routing to a
pod before it stops accepting. The container is non-root with a read-only root filesystem
and an ``emptyDir`` /tmp. In a cluster the server listens on 0.0.0.0 (the image's default);
on this machine everything binds 127.0.0.1 and these manifests are validated, not applied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

KUBERNETES_VERSION = "1.31.0"  # validated against this API version's schemas (bundled)
GRACEFUL_SHUTDOWN_S = 30  # ServerSettings.graceful_shutdown_s, the image's default
HEALTH_ROUTES = {"/health/ready", "/health/live"}  # course_pkg.serving.native


@dataclass(frozen=True)
class CapacityPlan:
    peak_rps: float
    per_core_rps: float
    target_utilization: float
    replicas: int  # at peak, with one spare
    min_replicas: int
    max_replicas: int

    def explain(self) -> str:
        per_pod = self.per_core_rps * self.target_utilization
        return (
            f"{self.peak_rps:,.0f} req/s at peak ÷ ({self.per_core_rps:,.0f} req/s per core × "
            f"{self.target_utilization:.0%} target) = {self.peak_rps / per_pod:.2f} pods → "
            f"{self.replicas - 1} + 1 spare = {self.replicas}; HPA {self.min_replicas}–"
            f"{self.max_replicas} at {self.target_utilization:.0%} CPU"
        )


def plan_capacity(
    peak_rps: float,
    per_core_rps: float,
    *,
    target_utilization: float = 0.6,
    min_replicas: int = 2,
) -> CapacityPlan:
    """Replicas for ``peak_rps`` from a measured single-core throughput (see module doc)."""
    if peak_rps <= 0 or per_core_rps <= 0:
        raise ValueError("peak_rps and per_core_rps must be positive (measure the second)")
    if not 0.1 <= target_utilization <= 0.9:
        raise ValueError("target_utilization: use 0.1-0.9 (0.6 leaves room for bursts)")
    needed = math.ceil(peak_rps / (per_core_rps * target_utilization))
    replicas = max(min_replicas, needed + 1)
    return CapacityPlan(
        peak_rps=peak_rps,
        per_core_rps=per_core_rps,
        target_utilization=target_utilization,
        replicas=replicas,
        min_replicas=min_replicas,
        max_replicas=max(replicas * 2, min_replicas + 1),
    )


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def manifests(
    image: str,
    plan: CapacityPlan,
    *,
    name: str = "churn-server",
    model_dir: str = "/models/churn",
    port: int = 8000,
) -> list[dict[str, Any]]:
    """Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget, as dicts."""
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "course-mlops"}
    container = {
        "name": "server",
        "image": image,
        "args": [model_dir],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": [
            {"name": "COURSE_SERVE_HOST", "value": "0.0.0.0"},
            {"name": "COURSE_SERVE_PORT", "value": str(port)},
            {"name": "COURSE_SERVE_WORKERS", "value": "1"},
            {"name": "COURSE_SERVE_LOG_FORMAT", "value": "json"},
        ],
        "resources": {
            "requests": {"cpu": "1", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        "startupProbe": _probe("/health/ready", 2, 30),  # up to 60 s to verify and warm
        "readinessProbe": _probe("/health/ready", 5, 2),
        "livenessProbe": _probe("/health/live", 10, 3),
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": plan.replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": GRACEFUL_SHUTDOWN_S + 15,
                    "automountServiceAccountToken": False,
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app.kubernetes.io/name": name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": plan.min_replicas,
            "maxReplicas": plan.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": round(plan.target_utilization * 100),
                        },
                    },
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "minAvailable": max(1, plan.min_replicas - 1),
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
        },
    }
    return [deployment, service, hpa, budget]


def validate(docs: list[dict[str, Any]], version: str = KUBERNETES_VERSION) -> None:
    """Check every document against the Kubernetes API schemas, strictly (unknown fields
    are errors), with the schemas bundled in ``kubernetes-validate``: no cluster, no network.
    Then what the schemas cannot see: the Deployment's selector matches its pods, the Service
    and probes name a declared port, the HPA and budget point at this Deployment, and the
    probes use the server's health routes. Raises ``ValueError`` naming the problem."""
    import kubernetes_validate

    for doc in docs:
        kind = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(p) for p in error.path) or "(top)"
            raise ValueError(f"{kind}: {where}: {error.message}") from None
        except kubernetes_validate.SchemaNotFoundError:
            raise ValueError(
                f"{kind}: {doc.get('apiVersion')} {doc.get('kind')} does not exist in "
                f"Kubernetes {version}"
            ) from None
    _consistent({doc["kind"]: doc for doc in docs})


def _consistent(by_kind: dict[str, dict[str, Any]]) -> None:
    deployment = by_kind.get("Deployment")
    if deployment is None:
        return  # the cross-references all start from the Deployment
    name = deployment["metadata"]["name"]
    spec = deployment["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    problems = []

    def selects(selector: dict[str, str]) -> bool:
        return all(pod_labels.get(k) == v for k, v in selector.items())

    if not selects(spec["selector"]["matchLabels"]):
        problems.append("Deployment selector does not match its pod labels")
    container = spec["template"]["spec"]["containers"][0]
    ports = {p["name"] for p in container.get("ports", [])}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container.get(probe, {}).get("httpGet")
        if get is None:
            problems.append(f"container has no {probe}")
        elif get["port"] not in ports or get["path"] not in HEALTH_ROUTES:
            problems.append(f"{probe}: {get['path']} on {get['port']!r} is not a health route")
    service = by_kind.get("Service")
    if service is not None:
        if not selects(service["spec"]["selector"]):
            problems.append("Service selector matches no pod of the Deployment")
        targets = {p["targetPort"] for p in service["spec"]["ports"]}
        if not targets <= ports:
            problems.append(f"Service targetPort {sorted(map(str, targets - ports))} undeclared")
    hpa = by_kind.get("HorizontalPodAutoscaler")
    if hpa is not None and hpa["spec"]["scaleTargetRef"]["name"] != name:
        problems.append("HorizontalPodAutoscaler scales another Deployment")
    budget = by_kind.get("PodDisruptionBudget")
    if budget is not None and not selects(budget["spec"]["selector"]["matchLabels"]):
        problems.append("PodDisruptionBudget selects no pod of the Deployment")
    if problems:
        raise ValueError("; ".join(problems))


def to_yaml(docs: list[dict[str, Any]]) -> str:
    import yaml

    return str(yaml.safe_dump_all(docs, sort_keys=False))
