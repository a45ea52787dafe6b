"""course_pkg: the reference implementation of the packaging/serving course.

Importing the package is cheap (no numpy, no torch): the heavy parts live in submodules that
are imported when used. The public API is what ``__all__`` lists.
"""

import os
from importlib.metadata import PackageNotFoundError, version

# onnxruntime 1.32's Linux wheel ships Microsoft's 1DS telemetry (it posts usage events to
# mobile.events.data.microsoft.com). This course sends no traffic beyond 127.0.0.1, so it is
# off everywhere course_pkg is imported; OnnxPredictor also calls disable_telemetry_events(),
# and the kernelspec, the test suite and every image set the variable too.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from course_pkg import paths
from course_pkg.checks import CheckResult, check

try:
    __version__ = version("course-pkg")
except PackageNotFoundError:  # running from a source tree without `pip install -e .`
    __version__ = "0.0.0+source"

__all__ = ["CheckResult", "__version__", "check", "paths"]
