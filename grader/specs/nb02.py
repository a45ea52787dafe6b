"""Hidden grading spec for notebook 02 (serialization security)."""

from __future__ import annotations

from typing import Any

from grader.specs.model import Assignment, Outcome, Question, fraction_equal

PICKLES_SETUP = """
import os as _os, pickle as _pickle, collections as _collections
class _R:
    def __init__(self, f, *a): self.f, self.a = f, a
    def __reduce__(self): return self.f, self.a
_cases = [
    _pickle.dumps(_R(_os.system, "true"), protocol=1),
    _pickle.dumps(_R(eval, "1"), protocol=3),
    _pickle.dumps([_R(_os.getcwd), _R(_os.getpid), _R(_os.getcwd)], protocol=4),
    _pickle.dumps(_collections.OrderedDict(a=1), protocol=5),
    _pickle.dumps({"plain": [1, 2.5, None]}, protocol=5),
]
"""
GLOBALS_PROBE = (
    PICKLES_SETUP
    + """
def probe():
    return [sorted(set(find_globals(data))) for data in _cases]
"""
)


def _globals_expected() -> list[list[str]]:
    # the self-check's oracle (the course's scanner), run here on the host
    from course_pkg.artifacts.pickle_scan import scan_bytes
    from course_pkg.checks.nb02 import ALLOW_EVERYTHING

    scope: dict[str, Any] = {}
    exec(PICKLES_SETUP, scope)
    return [scan_bytes(d, allowlist=ALLOW_EVERYTHING).unique_globals for d in scope["_cases"]]


ALLOW_CASES = [
    ("__main__", "ClipOutliers", True),
    ("__main__", "Payload", False),
    ("builtins", "exec", False),
    ("posix", "system", False),
    ("sklearn.linear_model._logistic", "LogisticRegression", True),
    ("importlib", "import_module", False),
]
ALLOW_PROBE = f"""
def probe():
    return [bool(my_allowlist.allows(m, n)) for m, n, _ in {ALLOW_CASES!r}]
"""

AUTH_PROBE = """
def probe():
    import pathlib, shutil, tempfile
    from course_pkg.artifacts.manifest import package_model
    from course_pkg.artifacts.signing import generate_keypair, sign_package
    root = pathlib.Path(tempfile.mkdtemp())
    private, public = generate_keypair(root / "k1")
    _, other = generate_keypair(root / "k2")
    src = root / "m.bin"
    src.write_bytes(b"graded weights")
    good = package_model({"model.bin": src}, root / "good", name="g", version="1.0.0",
                         model_file="model.bin").path
    sign_package(good, private)
    resigned = root / "resigned"
    shutil.copytree(good, resigned)
    manifest = resigned / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"g"', '"h"'))
    extra = root / "extra"
    shutil.copytree(good, extra)
    (extra / "backdoor.py").write_text("print('hi')")
    results = []
    for package, key in ((good, public), (good, other), (resigned, public), (extra, public)):
        try:
            results.append(bool(is_authentic(package, key)))
        except Exception as error:
            results.append("raised " + type(error).__name__)
    return results
"""

MALICIOUS_PROBE = """
def probe():
    import pathlib, pickle, shutil, tempfile
    from course_pkg.artifacts.hostile import CORPUS, build
    root = pathlib.Path(tempfile.mkdtemp())
    folder, markers = root / "inbox", root / "markers"
    folder.mkdir(); markers.mkdir()
    (folder / "readme.txt").write_text("not a model")
    (folder / "clean.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    for entry in CORPUS:
        if entry.name in {"joblib-object-array-nested-pickle", "protocol-0-text-eval",
                          "joblib-zlib", "pickle-named-skops"}:
            path, _ = build(entry, markers)
            shutil.move(str(path), str(folder / path.name))
    found = sorted(find_malicious(folder))
    return {"found": found, "markers": sorted(p.name for p in markers.glob("*.MARKER"))}
"""


def _allowlist_compare(got: Any, expected: list[bool]) -> Outcome:
    """No credit until the needed class loads (the default allowlist refuses it); then the
    share of the other cases right (too-wide allowlists lose points)."""
    if not isinstance(got, list) or len(got) != len(expected) or got[0] is not True:
        return Outcome(0.0, "__main__.ClipOutliers must be allowed")
    right = sum(g is e for g, e in zip(got[1:], expected[1:], strict=True))
    return Outcome(right / (len(expected) - 1), f"{right} of {len(expected) - 1} other cases right")


def _malicious_compare(got: Any, expected: dict[str, Any]) -> Outcome:
    if not isinstance(got, dict):
        return Outcome(0.0, "find_malicious must return a list")
    if got.get("markers"):
        return Outcome(0.0, "your function loaded a hostile file (a payload ran)")
    found, want = set(got.get("found") or []), set(expected["found"])
    right = len(found & want) - len(found - want)
    return Outcome(
        max(0.0, right / len(want)),
        f"{len(found & want)} of {len(want)} found, {len(found - want)} false alarms",
    )


ASSIGNMENT = Assignment(
    id="02",
    notebook="02_serialization_security.ipynb",
    title="Serialization security",
    # Demonstrations no probe needs (nothing later reads what only they define: a test says
    # so), skipped while unchanged: skops' round trip (02-018), §5's scanner comparison
    # (picklescan, fickling, modelscan — which imports TensorFlow — on 31 hostile files) and
    # its plot (02-026, 02-027): about half of the notebook's time. 02-021 (tampering) stays:
    # is_authentic uses the ArtifactError it imports.
    demo_cells=("02-018", "02-026", "02-027"),
    questions=(
        Question(
            "find_globals",
            3,
            "Find the globals in a pickle",
            GLOBALS_PROBE,
            _globals_expected,
            fraction_equal,
            hint="GLOBAL/INST args; STACK_GLOBAL + memo",
            answers=("find_globals",),
        ),
        Question(
            "allowlist",
            2,
            "Extend the allowlist exactly",
            ALLOW_PROBE,
            lambda: [ok for _, _, ok in ALLOW_CASES],
            _allowlist_compare,
        ),
        Question(
            "is_authentic",
            2,
            "Verify a signed package",
            AUTH_PROBE,
            lambda: [True, False, False, False],
            fraction_equal,
            hint="signature and every file; return False, never raise",
        ),
        Question(
            "find_malicious",
            3,
            "Spot the malicious files",
            MALICIOUS_PROBE,
            lambda: {"found": ["d.pkl", "n.joblib", "p.joblib", "s.skops"], "markers": []},
            _malicious_compare,
            hint="scan, never load",
        ),
    ),
    cell_timeout=120,
    wall_timeout=300,
)
