"""The reference model server (notebook 04): FastAPI, four protocols, validated payloads.

    from course_pkg.serving import ServerSettings, create_app
    app = create_app(["build/churn"], ServerSettings(max_rows=1000))

``course-pkg serve MODEL_DIR... --port 8000 --workers 2`` runs it under uvicorn.
Protocols and the error shape: docs/SERVING.md.

The names below are imported when first used (PEP 562), so ``course_pkg.serving.process``
and the other submodules do not pay for FastAPI, pandas and onnxruntime unless they use them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from course_pkg.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from course_pkg.serving.app import create_app
    from course_pkg.serving.errors import ApiError
    from course_pkg.serving.registry import ModelRegistry, ServedModel
    from course_pkg.serving.runner import serve
    from course_pkg.serving.settings import ServerSettings

_EXPORTS = {
    "ApiError": "course_pkg.serving.errors",
    "ModelRegistry": "course_pkg.serving.registry",
    "ServedModel": "course_pkg.serving.registry",
    "ServerSettings": "course_pkg.serving.settings",
    "create_app": "course_pkg.serving.app",
    "serve": "course_pkg.serving.runner",
}
__all__ = ["ApiError", "ModelRegistry", "ServedModel", "ServerSettings", "create_app", "serve"]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
