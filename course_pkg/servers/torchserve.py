"""TorchServe, run for real: a TorchScript digits model, its handler, a .mar archive, the APIs.

    store = Path("build/model-store")
    archive_digits(store, version="1.0")                  # store/digits.mar
    with TorchServeServer(store, ["digits.mar"]) as ts:
        ts.predict("digits", {"pixels": [...64 values...]})
        ts.register("digits_v2.mar")                       # management API
        ts.set_default("digits", "2.0"); ts.scale("digits", 2)
        ts.metrics()                                       # Prometheus text

TorchServe is a Java server that runs Python *handlers* in worker processes. Everything here
binds to 127.0.0.1 (five free ports: inference, management, metrics and the two gRPC APIs, so
several TorchServes can run on one machine); token authorisation is off
for the lab (``disable_token_authorization=true``) — a real deployment keeps it on. Logs and
state go to a temporary directory, deleted on stop.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from course_pkg.processes import LocalServer, free_port

# The handler TorchServe runs for every request batch. Plain text on purpose: it is what goes
# into the .mar archive, and what notebook 07's exercise asks students to write.
DIGITS_HANDLER = '''\
"""TorchServe handler for the digits MLP: JSON {"pixels": [64 numbers]} → label + probabilities."""
import json

import torch
from ts.torch_handler.base_handler import BaseHandler


class DigitsHandler(BaseHandler):
    def preprocess(self, requests):
        rows = []
        for request in requests:  # TorchServe may batch several requests into one call
            body = request.get("body") or request.get("data")
            if isinstance(body, (bytes, bytearray)):
                body = json.loads(body)
            pixels = body["pixels"]
            if len(pixels) != 64:
                raise ValueError(f"expected 64 pixels, got {len(pixels)}")
            rows.append([float(value) for value in pixels])
        return torch.tensor(rows, dtype=torch.float32)

    def inference(self, data, *args, **kwargs):
        with torch.inference_mode():
            return torch.softmax(self.model(data), dim=1)

    def postprocess(self, probabilities):
        return [
            {"label": int(row.argmax()), "probabilities": [round(float(p), 6) for p in row]}
            for row in probabilities
        ]
'''


def train_digits_torchscript(path: Path, *, epochs: int = 150, seed: int = 7) -> Path:
    """A small MLP on the digits (pixels/16 → 32 → 10), trained full-batch with Adam and traced
    to TorchScript at ``path``. The scaling is inside the network, so clients send raw 0-16
    pixel values, as they do to the reference server."""
    import numpy as np
    import torch

    from course_pkg.datasets.digits import load_digits_training

    x, y = load_digits_training()
    torch.manual_seed(seed)
    layers = [torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)]
    net = torch.nn.Sequential(*layers)
    features = torch.as_tensor(np.asarray(x) / 16.0, dtype=torch.float32)
    target = torch.as_tensor(np.asarray(y), dtype=torch.long)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(epochs):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(features), target).backward()
        optimizer.step()

    class Digits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            scores: torch.Tensor = self.net(pixels / 16.0)
            return scores

    traced = torch.jit.trace(Digits().eval(), torch.zeros(1, 64))
    torch.jit.save(traced, str(path))
    return Path(path)


def archive(
    model_file: Path,
    handler_file: Path,
    export_dir: Path,
    *,
    name: str,
    version: str,
    archive_name: str | None = None,
    extra_files: Sequence[Path] = (),
) -> Path:
    """``torch-model-archiver``: model + handler (+ ``extra_files``, unpacked next to the
    model) → ``export_dir/<archive_name or name>.mar``."""
    export_dir.mkdir(parents=True, exist_ok=True)
    archiver = Path(sys.executable).parent / "torch-model-archiver"
    stem = archive_name or name
    with tempfile.TemporaryDirectory() as staging:
        subprocess.run(
            [
                str(archiver),
                *("--model-name", stem, "--version", version),
                *("--serialized-file", str(model_file), "--handler", str(handler_file)),
                *("--export-path", staging, "--force"),
                *(("--extra-files", ",".join(map(str, extra_files))) if extra_files else ()),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        built = Path(staging) / f"{stem}.mar"
        if stem != name:  # the archive's model name is what the APIs use: rewrite it
            _rename_model(built, name)
        target = export_dir / f"{stem}.mar"
        shutil.move(str(built), target)
    return target


def model_name(mar: Path) -> str:
    """The model name inside a .mar (what the APIs use), from its MAR-INF/MANIFEST.json."""
    import zipfile

    with zipfile.ZipFile(mar) as archive_file:
        manifest = json.loads(archive_file.read("MAR-INF/MANIFEST.json"))
    return str(manifest["model"]["modelName"])


def _rename_model(mar: Path, name: str) -> None:
    """Set modelName inside a .mar (a zip) so several archives can hold versions of one model."""
    import zipfile

    with zipfile.ZipFile(mar) as source:
        entries = {info.filename: source.read(info) for info in source.infolist()}
    manifest = json.loads(entries["MAR-INF/MANIFEST.json"])
    manifest["model"]["modelName"] = name
    entries["MAR-INF/MANIFEST.json"] = json.dumps(manifest, indent=2).encode()
    with zipfile.ZipFile(mar, "w", zipfile.ZIP_DEFLATED) as target:
        for filename, data in entries.items():
            target.writestr(filename, data)


def archive_digits(model_store: Path, *, version: str = "1.0", seed: int = 7) -> Path:
    """Train, script and archive the digits model as ``digits.mar`` (version 1.0) or
    ``digits_v<major>.mar`` (other versions, same model name "digits")."""
    with tempfile.TemporaryDirectory() as work:
        model = train_digits_torchscript(Path(work) / "digits.pt", seed=seed)
        handler = Path(work) / "digits_handler.py"
        handler.write_text(DIGITS_HANDLER)
        stem = "digits" if version == "1.0" else f"digits_v{version.split('.')[0]}"
        return archive(
            model, handler, model_store, name="digits", version=version, archive_name=stem
        )


class TorchServeServer(LocalServer):
    """TorchServe on 127.0.0.1 (inference, management and metrics ports), foreground."""

    what = "torchserve"

    def __init__(
        self,
        model_store: Path,
        models: list[str],
        *,
        workers: int = 1,
        startup_timeout: float = 120.0,
        command_prefix: Sequence[str] = (),
    ) -> None:
        if shutil.which("java") is None:
            raise FileNotFoundError(
                "TorchServe needs Java 11+: sudo apt-get install openjdk-17-jre"
            )
        self.workdir = Path(tempfile.mkdtemp(prefix="torchserve-"))
        (self.workdir / "tmp").mkdir()
        (self.workdir / "logs").mkdir()
        port, self.management_port, self.metrics_port = free_port(), free_port(), free_port()
        self.management_url = f"http://127.0.0.1:{self.management_port}"
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}"
        self.model_store = Path(model_store).resolve()
        self.models = list(models)
        # read from the archives, not guessed from their file names (digits_v2.mar is "digits")
        self.model_names = sorted({model_name(self.model_store / m) for m in models})
        config = self.workdir / "config.properties"
        config.write_text(
            "\n".join(
                [
                    f"inference_address=http://127.0.0.1:{port}",
                    f"management_address={self.management_url}",
                    f"metrics_address={self.metrics_url}",
                    # gRPC too: by default TorchServe takes 7070/7071, so a second TorchServe
                    # on the machine (another notebook, a test, a peer benchmark) could not start
                    "grpc_inference_address=127.0.0.1",
                    f"grpc_inference_port={free_port()}",
                    "grpc_management_address=127.0.0.1",
                    f"grpc_management_port={free_port()}",
                    f"model_store={self.model_store}",
                    f"load_models={','.join(models)}",
                    f"default_workers_per_model={workers}",
                    "disable_token_authorization=true",
                    "enable_model_api=true",  # registering models over HTTP is off by default
                    "enable_envvars_config=false",
                    "install_py_dep_per_model=false",
                    "metrics_mode=prometheus",
                    "job_queue_size=1000",
                ]
            )
            + "\n"
        )
        command = [
            str(Path(sys.executable).parent / "torchserve"),
            *("--start", "--foreground", "--ts-config", str(config)),
            *("--model-store", str(self.model_store)),
            "--disable-token-auth",
            "--enable-model-api",
            "--no-config-snapshots",
        ]
        env = {
            "LOG_LOCATION": str(self.workdir / "logs"),
            "METRICS_LOCATION": str(self.workdir / "logs"),
            "TEMP": str(self.workdir / "tmp"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        super().__init__(
            command,
            port=port,
            env=env,
            startup_timeout=startup_timeout,
            command_prefix=command_prefix,  # e.g. taskset: the Java server and workers inherit it
        )

    def is_ready(self) -> bool:
        """Every model in ``load_models`` has a READY worker (the /ping route answers before
        the models are loaded)."""
        import httpx

        try:
            for name in self.model_names:
                answer = httpx.get(f"{self.management_url}/models/{name}", timeout=2)
                if answer.status_code != 200:
                    return False
                workers = [w for m in answer.json() for w in m.get("workers", [])]
                if not any(w.get("status") == "READY" for w in workers):
                    return False
        except httpx.HTTPError:
            return False
        return True

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM to the whole group: the Python launcher *and* the Java server it started."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        return super().stop(timeout)

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- the inference API -------------------------------------------------------------------

    def predict(self, name: str, body: Any, version: str | None = None) -> Any:
        import httpx

        path = f"/predictions/{name}" + (f"/{version}" if version else "")
        answer = httpx.post(f"{self.url}{path}", json=body, timeout=30)
        answer.raise_for_status()
        return answer.json()

    # --- the management API ------------------------------------------------------------------

    def _manage(self, method: str, path: str, **params: Any) -> Any:
        import httpx

        answer = httpx.request(
            method, f"{self.management_url}{path}", params=params or None, timeout=120
        )
        if answer.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text.strip()}")
        return answer.json()

    def register(self, archive_name: str, workers: int = 1) -> Any:
        """Load another archive from the model store (waits until its workers are up)."""
        return self._manage(
            "POST", "/models", url=archive_name, initial_workers=workers, synchronous="true"
        )

    def set_default(self, name: str, version: str) -> Any:
        """Which version ``/predictions/{name}`` (no version) uses."""
        return self._manage("PUT", f"/models/{name}/{version}/set-default")

    def scale(self, name: str, workers: int, version: str | None = None) -> Any:
        path = f"/models/{name}" + (f"/{version}" if version else "")
        return self._manage("PUT", path, min_worker=workers, max_worker=workers, synchronous="true")

    def default_version(self, name: str) -> str:
        """The version unversioned requests go to (GET /models/{name} describes only it)."""
        return str(self._manage("GET", f"/models/{name}")[0]["modelVersion"])

    def describe(self, name: str, version: str = "all") -> list[dict[str, Any]]:
        described: list[dict[str, Any]] = self._manage("GET", f"/models/{name}/{version}")
        return described

    def metrics(self) -> str:
        import httpx

        return httpx.get(f"{self.metrics_url}/metrics", timeout=10).text
