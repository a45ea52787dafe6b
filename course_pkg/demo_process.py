"""The demo apps as processes on 127.0.0.1: Streamlit and Gradio (or a Space folder's app).

    with StreamlitApp(env={"COURSE_DEMO_CHURN": "build/churn"}) as app:
        print(app.url)                      # open it, or drive it with course_pkg.browser
    with GradioApp(env={"COURSE_DEMO_SERVER": server.url}) as app: ...
    with GradioApp(space="build/space") as app: ...   # python app.py, the way Spaces runs it

Both are started with telemetry off and wait for the app's own health route.
"""

from __future__ import annotations

import sys
from pathlib import Path

from course_pkg.processes import LocalServer, free_port

STREAMLIT_APP = Path(__file__).resolve().parent / "demos" / "streamlit_app.py"
# Run a Space's app.py as Spaces does (in its folder, first on sys.path, as __main__), with
# course_pkg made unimportable: the folder must carry everything it needs.
SPACE_LAUNCHER = (
    "import os, runpy, sys; sys.modules['course_pkg'] = None; os.chdir({folder!r}); "
    "sys.path.insert(0, {folder!r}); "
    "runpy.run_path(os.path.join({folder!r}, 'app.py'), run_name='__main__')"
)


class StreamlitApp(LocalServer):
    what = "streamlit"

    def __init__(
        self,
        *,
        env: dict[str, str] | None = None,
        port: int | None = None,
        script: str | Path = STREAMLIT_APP,
    ) -> None:
        """``script``: the course's app by default, or any Streamlit script (a student's)."""
        port = port or free_port()
        command = [
            *(sys.executable, "-m", "streamlit", "run", str(script)),
            *("--server.address", "127.0.0.1", "--server.port", str(port)),
            *("--server.headless", "true", "--browser.gatherUsageStats", "false"),
            *("--server.fileWatcherType", "none", "--global.developmentMode", "false"),
            *("--client.toolbarMode", "viewer"),
        ]
        super().__init__(command, port=port, env=env, ready_path="/_stcore/health")


class GradioApp(LocalServer):
    what = "gradio"

    def __init__(
        self,
        *,
        env: dict[str, str] | None = None,
        port: int | None = None,
        space: str | Path | None = None,
    ) -> None:
        port = port or free_port()
        if space is None:
            command = [sys.executable, "-m", "course_pkg.demos.gradio_app"]
        else:
            folder = str(Path(space).resolve())
            command = [sys.executable, "-c", SPACE_LAUNCHER.format(folder=folder)]
        settings = {
            "GRADIO_SERVER_NAME": "127.0.0.1",  # Spaces sets 0.0.0.0; here: loopback only
            "GRADIO_SERVER_PORT": str(port),
            "GRADIO_ANALYTICS_ENABLED": "False",
            **(env or {}),
        }
        super().__init__(command, port=port, env=settings, ready_path="/")
