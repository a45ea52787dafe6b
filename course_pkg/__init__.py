"""course_pkg: the reference implementation of the packaging/serving course.

Importing the package is cheap (no numpy, no torch): the heavy parts live in submodules that
are imported when used. The public API is what ``__all__`` lists.
"""

from importlib.metadata import PackageNotFoundError, version

from course_pkg import paths
from course_pkg.checks import CheckResult, check

try:
    __version__ = version("course-pkg")
except PackageNotFoundError:  # running from a source tree without `pip install -e .`
    __version__ = "0.0.0+source"

__all__ = ["CheckResult", "__version__", "check", "paths"]
