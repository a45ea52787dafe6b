"""The churn pipeline as an MLflow model, served by the real ``mlflow models serve``.

    model_dir = save_churn_mlflow(Path("build/mlflow-churn"))
    with MlflowServer(model_dir) as server:
        httpx.post(f"{server.url}/invocations", json={"dataframe_split": {...}})

The model is the same fitted scikit-learn pipeline the course's churn package holds (read from
its verified skops file), saved with a signature and an input example; MLflow 3 stores
scikit-learn models with skops. ``mlflow models serve --env-manager local`` runs it with this
environment's packages (no conda, no virtualenv, no download) on 127.0.0.1; MLflow's own
scoring server shells out to ``uvicorn``, so the venv's ``bin`` goes first on PATH.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from course_pkg.processes import LocalServer, free_port


def save_churn_mlflow(out_dir: Path, package_dir: Path | None = None) -> Path:
    """Save the churn pipeline as an MLflow model at ``out_dir`` (replaced if it exists).

    ``package_dir``: a churn package (``course-pkg train churn``); a fresh one is trained in
    a temporary directory when omitted.
    """
    import shutil
    import tempfile

    from course_pkg.artifacts import load_package
    from course_pkg.training import package_churn, train_churn

    if package_dir is None:
        package_dir = package_churn(Path(tempfile.mkdtemp(prefix="churn-")) / "churn").path
    pipeline, _ = load_package(package_dir, file="model.skops")
    example = train_churn().x_test.head(5)
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mlflow's import-time deprecation chatter
        import mlflow.sklearn
        from mlflow.models import infer_signature

        mlflow.sklearn.save_model(
            pipeline,
            str(out_dir),
            signature=infer_signature(example, pipeline.predict(example)),
            input_example=example.head(2),
            # pinned from this environment instead of MLflow's import sniffing (slower, and it
            # picks up unrelated packages such as torch)
            pip_requirements=model_requirements(),
        )
    return out_dir


def model_requirements() -> list[str]:
    """What the saved model needs to load, pinned to the versions that saved it."""
    from importlib.metadata import version

    names = ("mlflow", "scikit-learn", "skops", "pandas", "numpy", "scipy")
    return [f"{name}=={version(name)}" for name in names]


class MlflowServer(LocalServer):
    """``mlflow models serve -m DIR --env-manager local`` on 127.0.0.1, one worker."""

    what = "mlflow models serve"

    def __init__(
        self,
        model_dir: str | Path,
        *,
        port: int | None = None,
        workers: int = 1,
        env: dict[str, str] | None = None,
        startup_timeout: float = 120.0,
        command_prefix: Sequence[str] = (),
    ) -> None:
        port = port or free_port()
        bin_dir = Path(sys.executable).parent
        command = [
            str(bin_dir / "mlflow"),
            *("models", "serve", "-m", str(model_dir), "--env-manager", "local"),
            *("-h", "127.0.0.1", "-p", str(port), "-w", str(workers)),
        ]
        environment: dict[str, Any] = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            **(env or {}),
        }
        super().__init__(
            command,
            port=port,
            env=environment,
            ready_path="/ping",
            startup_timeout=startup_timeout,
            command_prefix=command_prefix,
        )
