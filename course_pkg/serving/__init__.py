"""The reference model server (notebook 04): FastAPI, four protocols, validated payloads.

    from course_pkg.serving import ServerSettings, create_app
    app = create_app(["build/churn"], ServerSettings(max_rows=1000))

``course-pkg serve MODEL_DIR... --port 8000 --workers 2`` runs it under uvicorn.
Protocols and the error shape: docs/SERVING.md.
"""

from course_pkg.serving.app import create_app
from course_pkg.serving.errors import ApiError
from course_pkg.serving.registry import ModelRegistry, ServedModel
from course_pkg.serving.runner import serve
from course_pkg.serving.settings import ServerSettings

__all__ = ["ApiError", "ModelRegistry", "ServedModel", "ServerSettings", "create_app", "serve"]
