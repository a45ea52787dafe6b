"""The models a server serves: loaded through the verifying loader, warmed, looked up by name.

Each model directory is a package (``course-pkg train`` / ``export-onnx``) with an ONNX file.
Loading verifies every hash (and the signature, when a public key is configured) before the
ONNX file is opened; a package that fails never serves. Several versions of one model may be
loaded; which one an unversioned request gets is the routing's choice (``gateway``: the
``stable`` alias, or a weighted split), pinned to the highest version loaded at start.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from course_pkg.errors import CourseError
from course_pkg.onnx_export import OnnxPredictor
from course_pkg.serving.errors import ApiError, not_found
from course_pkg.serving.gateway import LATEST, STABLE, RoutingTable
from course_pkg.serving.schema import RowSchema


class AlreadyLoaded(CourseError, ValueError):
    """The package's name and version are already served."""


def semver_key(version: str) -> tuple[int, ...]:
    core = version.split("+")[0].split("-")[0]
    return tuple(int(part) for part in core.split("."))


@dataclass
class ServedModel:
    name: str
    version: str
    path: Path
    manifest: dict[str, Any]
    predictor: OnnxPredictor
    schema: RowSchema
    loaded_at: float = field(default_factory=time.time)

    @property
    def kind(self) -> str:
        return "image" if self.predictor.tensor_input is not None else "tabular"

    @property
    def sha256(self) -> str:
        return str(self.manifest["files"][self.manifest["model_file"]]["sha256"])

    @property
    def classes(self) -> list[Any]:
        probabilities = self.manifest.get("output_schema", {}).get("probabilities", {})
        return list(probabilities.get("classes") or [])

    def example(self) -> list[dict[str, Any]]:
        example = self.manifest.get("extra", {}).get("input_example")
        return list(example) if example else [self.predictor.example_row()]

    def predict_rows(
        self, rows: list[dict[str, Any]], cache: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Validated rows → (labels, probabilities); only cache misses reach the model."""
        if cache is not None:
            return self._predict_cached(rows, cache)
        return self._predict(rows)

    def _predict_cached(
        self, rows: list[dict[str, Any]], cache: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        now = time.monotonic()
        model_key = f"{self.name}:{self.version}:{self.sha256}"
        keys = [cache.key(model_key, row) for row in rows]
        found = cache.get_many(keys, now)
        missing = [i for i, hit in enumerate(found) if hit is None]
        if missing:
            labels, proba = self._predict([rows[i] for i in missing])
            fresh = [(keys[i], int(labels[j]), proba[j].tolist()) for j, i in enumerate(missing)]
            for (_, label, probabilities), i in zip(fresh, missing, strict=True):
                found[i] = (label, probabilities)
            cache.put_many(fresh, now)
        return (
            np.array([hit[0] for hit in found], dtype=np.int64),
            np.array([hit[1] for hit in found], dtype=np.float32),
        )

    def _predict(self, rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        if self.predictor.tensor_input is not None:
            name = self.predictor.tensor_input[0]
            return self.predictor.predict_tensor(
                np.asarray([row[name] for row in rows], dtype=np.float64), validate=False
            )
        return self.predictor.predict_columns(self.schema.to_columns(rows))

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "sha256": self.sha256,
            "model_file": self.manifest["model_file"],
            "created": self.manifest.get("created"),
            "metrics": self.manifest.get("metrics", {}),
            "input_schema": self.manifest.get("input_schema", []),
            "input_example": self.example()[:1] if self.kind == "tabular" else [],
            "output_schema": self.manifest.get("output_schema", {}),
            "inputs": self.predictor.input_types,
            "onnx_metadata": self.predictor.metadata,
        }


class ModelRegistry:
    """Thread-safe {name: {version: ServedModel}}; ``ready`` once all are loaded and warmed."""

    def __init__(
        self,
        model_dirs: Sequence[str | Path] = (),
        *,
        public_key: Any = None,
        require_signature: bool = False,
    ) -> None:
        self.model_dirs = [Path(d) for d in model_dirs]
        self.public_key = public_key
        self.require_signature = require_signature
        self._models: dict[str, dict[str, ServedModel]] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.error: str | None = None
        self.order: list[tuple[str, str]] = []  # load order: the first is the default model
        self.routes = RoutingTable(self.versions)

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def load(self, path: str | Path) -> ServedModel:
        """Verify, open, warm and register one package; returns it."""
        path = Path(path)
        if self.require_signature and self.public_key is None:
            raise ValueError("require_signature is set but no public key is configured")
        predictor = OnnxPredictor.from_package(path, self.public_key)
        manifest = predictor.manifest
        served = ServedModel(
            name=manifest["name"],
            version=manifest["version"],
            path=path,
            manifest=manifest,
            predictor=predictor,
            schema=RowSchema(manifest.get("input_schema") or [], manifest["name"]),
        )
        served.predict_rows(served.schema.validate_rows(served.example(), max_rows=1000))  # warm
        with self._lock:
            versions = self._models.setdefault(served.name, {})
            if served.version in versions:
                raise AlreadyLoaded(f"{served.name} {served.version} is loaded twice ({path})")
            versions[served.version] = served
            self.order.append((served.name, served.version))
        if self.ready:  # loaded later (admin API): a new model starts stable on it
            self.routes.start(served.name, served.version)
        return served

    def unload(self, name: str, version: str) -> ServedModel:
        """Stop serving one version; 409 while an alias or weight points at it. Requests
        already holding it finish normally."""
        served = self.get(name, version)
        with self.routes.lock:  # no routing change between the check and the removal
            used = self.routes.references(name, served.version)
            if used:
                raise ApiError(
                    409,
                    "routing_conflict",
                    f"{name} {served.version} is routed to by {', '.join(used)}; "
                    "move those aliases and weights first",
                )
            with self._lock:
                del self._models[name][served.version]
                self.order.remove((name, served.version))
        return served

    def load_all(self, routing: dict[str, dict[str, Any]] | None = None) -> None:
        """Load every configured directory, pin each model's ``stable`` to its highest
        version, apply ``routing`` ({name: {"aliases": …, "weights": …}}), then mark the
        registry ready."""
        try:
            for directory in self.model_dirs:
                self.load(directory)
            for name in self.names():
                self.routes.start(name, self.versions(name)[-1])
            for name, entry in (routing or {}).items():
                self.get(name)  # 404 names the models served
                self.routes.configure(name, entry.get("aliases", {}), entry.get("weights", {}))
        except Exception as error:
            self.error = f"{type(error).__name__}: {error}"
            raise
        self._ready.set()

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._models)

    def versions(self, name: str) -> list[str]:
        with self._lock:
            return sorted(self._models.get(name, {}), key=semver_key)

    def all(self) -> list[ServedModel]:
        with self._lock:
            return [self._models[n][v] for n, v in self.order]

    def get(self, name: str, version: str | None = None) -> ServedModel:
        """The model (its ``stable`` alias unless ``version``); 404 ``ApiError`` when absent.

        ``version`` is a semantic version ("1.0.0"), an alias ("canary"; "latest" is the
        highest version) or, for TF-Serving-style clients, a bare integer meaning the highest
        loaded version with that major number.
        """
        routing = self.routes.get(name)
        with self._lock:
            versions = self._models.get(name)
            if not versions:
                raise not_found(f"model {name!r}", sorted(self._models))
            if version == LATEST or (version is None and STABLE not in routing.aliases):
                return versions[max(versions, key=semver_key)]
            version = routing.resolve(STABLE if version is None else version)
            if version in versions:
                return versions[version]
            if version.isdigit():
                major = [v for v in versions if semver_key(v)[0] == int(version)]
                if major:
                    return versions[max(major, key=semver_key)]
            known = sorted(versions, key=semver_key) + sorted(routing.aliases) + [LATEST]
            raise not_found(f"{name} version {version!r}", known)

    def route(self, name: str, client: str | None) -> tuple[ServedModel, str]:
        """The version an unversioned request is served by, and the alias (or version) that
        chose it: the split when weights are set, sticky for a client id."""
        routing = self.routes.get(name)  # one snapshot: the target and its version agree
        target = routing.choose(name, client)
        # No lock on this hot path: dict reads are atomic under the GIL, and loads and unloads
        # (under the lock) replace entries whole.
        served = self._models.get(name, {}).get(routing.resolve(target))
        if served is None:  # the routing changed meanwhile (or it is not started yet)
            return self.get(name), STABLE
        return served, target

    def default_name(self) -> str:
        """The first model loaded: what /invocations (MLflow serves one model) predicts with."""
        order = self.order  # read without the lock: list indexing is atomic under the GIL
        if not order:
            raise not_found("a model", [])
        return order[0][0]

    def default(self) -> ServedModel:
        return self.get(self.default_name())
