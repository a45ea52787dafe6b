"""course_pkg: the reference implementation of the packaging/serving course.

Importing the package is cheap (no numpy, no torch, not even the check registry or
importlib.metadata): ``check``, ``CheckResult`` and ``__version__`` are imported when first
used (PEP 562), so light modules such as ``course_pkg.processes`` stay light. The public API
is what ``__all__`` lists.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

# onnxruntime 1.32's Linux wheel ships Microsoft's 1DS telemetry (it posts usage events to
# mobile.events.data.microsoft.com). This course sends no traffic beyond 127.0.0.1, so it is
# off everywhere course_pkg is imported; OnnxPredictor also calls disable_telemetry_events(),
# and the kernelspec, the test suite and every image set the variable too.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from course_pkg import paths
from course_pkg.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from course_pkg.checks import CheckResult, check
    from course_pkg.version import __version__

_EXPORTS = {
    "CheckResult": "course_pkg.checks",
    "check": "course_pkg.checks",
    "__version__": "course_pkg.version",
}
__all__ = ["CheckResult", "__version__", "check", "paths"]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
