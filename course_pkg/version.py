"""The installed course_pkg version, importable without the package's public API.

``course_pkg/__init__`` re-exports the check registry; modules low in the layering (serving,
containers, the CLI parser) take the version from here so they do not import it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("course-pkg")
except PackageNotFoundError:  # running from a source tree without `pip install -e .`
    __version__ = "0.0.0+source"
