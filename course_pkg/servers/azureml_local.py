"""Microsoft's Azure ML inference server (``azmlinfsrv``) run locally, bound to 127.0.0.1.

    with AzureMLServer("build/azureml") as server:           # score.py + model/ inside
        httpx.post(server.url + "/score", json={"data": [row]})

``azmlinfsrv --entry_script score.py --port P`` is what Azure ML runs in its inference images
(gunicorn + Flask, ``init()`` once per worker, ``POST /score`` → ``run(body)``, ``GET /``
for liveness). Its host is hard-coded to 0.0.0.0 (``constants.DEFAULT_HOST``), which this
course never binds: ``python -m course_pkg.servers.azureml_local ARGS`` runs the same
``amlserver.run()`` with only that constant set to 127.0.0.1.
"""

from __future__ import annotations

import sys
from pathlib import Path

from course_pkg.processes import LocalServer, free_port


class AzureMLServer(LocalServer):
    what = "azmlinfsrv"

    def __init__(
        self,
        folder: str | Path,
        *,
        entry_script: str = "score.py",
        model_dir: str = "model",
        port: int | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        folder = Path(folder).resolve()
        port = port or free_port()
        command = [
            sys.executable,
            "-m",
            "course_pkg.servers.azureml_local",
            *("--entry_script", str(folder / entry_script)),
            *("--model_dir", str(folder / model_dir)),
            *("--port", str(port)),
        ]
        super().__init__(
            command,
            port=port,
            env={"AML_APP_ROOT": str(folder)},  # as in Azure: the code folder is importable
            ready_path="/",
            startup_timeout=startup_timeout,
        )


def main() -> int:
    from azureml_inference_server_http import amlserver

    amlserver.DEFAULT_HOST = "127.0.0.1"
    amlserver.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
