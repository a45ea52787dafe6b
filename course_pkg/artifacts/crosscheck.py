"""Run other scanners on the same files, for the comparison table in notebook 02.

picklescan, fickling and modelscan are denylist-style scanners (they flag known-dangerous
globals; modelscan picks files by extension and skips the ones it does not know); skops'
``get_untrusted_types`` applies only to skops files. Each function returns a short
verdict — ``flagged``, ``missed`` or ``error: …`` — and never raises.
"""

from __future__ import annotations

from pathlib import Path

from course_pkg.artifacts.safe_load import scan_file


def ours(path: Path) -> str:
    return "missed" if scan_file(path).safe else "flagged"


def picklescan(path: Path) -> str:
    try:
        from picklescan.scanner import scan_file_path

        result = scan_file_path(str(path))
    except Exception as error:
        return f"error: {type(error).__name__}"
    if result.infected_files or result.issues_count:
        return "flagged"
    return "error: could not parse" if result.scan_err else "missed"


def fickling(path: Path) -> str:
    try:
        import fickling as fk

        safe = fk.is_likely_safe(str(path))
    except Exception as error:
        return f"error: {type(error).__name__}"
    return "missed" if safe else "flagged"


def modelscan(path: Path) -> str:
    """modelscan 0.8.8's Python API (importing it imports TensorFlow: ~10-30 s, once)."""
    try:
        from course_pkg.artifacts.deep import import_tensorflow

        import_tensorflow()  # modelscan imports it; this keeps its C++ start-up notices quiet
        from modelscan.modelscan import ModelScan
        from modelscan.settings import DEFAULT_SETTINGS

        result = ModelScan(settings=DEFAULT_SETTINGS).scan(str(path))
    except Exception as error:
        return f"error: {type(error).__name__}"
    summary = result.get("summary", {})
    if summary.get("total_issues"):
        return "flagged"
    if result.get("errors"):
        return "error: could not parse"
    if summary.get("skipped", {}).get("total_skipped"):
        return "n/a (skipped: file type by extension)"
    return "missed"


def skops_untrusted(path: Path) -> str:
    try:
        from skops.io import get_untrusted_types

        untrusted = get_untrusted_types(file=str(path))
    except Exception as error:
        return f"n/a ({type(error).__name__}: not a skops file)"
    return "flagged" if untrusted else "missed"


SCANNERS = {
    "course_pkg": ours,
    "picklescan": picklescan,
    "fickling": fickling,
    "modelscan": modelscan,
    "skops": skops_untrusted,
}


def crosscheck(paths: list[Path]) -> list[dict[str, str]]:
    """One row per file: the file name and each scanner's verdict."""
    return [{"file": p.name, **{name: fn(p) for name, fn in SCANNERS.items()}} for p in paths]
