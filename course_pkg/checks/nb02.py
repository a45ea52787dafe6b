"""Self-checks for notebook 02 (serialization security)."""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any

from course_pkg.checks._registry import CheckFailed, callable_answer, expect, register


class _Everything:
    """An allowlist that allows everything: with the symbolic scanner, this lists globals
    without importing or calling any of them."""

    extra: frozenset[tuple[str, str]] = frozenset()

    def allows(self, module: str, name: str) -> bool:
        return True


ALLOW_EVERYTHING: Any = _Everything()


class _Touch:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, ("true",)


# Anything that runs the course's scanner is its answer, whichever entry point it goes through
# (scan_bytes, scan_file, safe_load): the unpickler class is watched as well. The notebook
# itself teaches scan_bytes right after the exercise.
@register(
    "02.find_globals",
    forbidden=(
        "course_pkg.artifacts.pickle_scan.scan_bytes",
        "course_pkg.artifacts.pickle_scan._SymbolicUnpickler",
    ),
)
def _find_globals(answer: Any) -> str:
    from sklearn.preprocessing import StandardScaler

    from course_pkg.artifacts.pickle_scan import scan_bytes

    fn = callable_answer(answer, "find_globals")
    cases = {
        "protocol 0 (GLOBAL opcode)": pickle.dumps(_Touch(), protocol=0),
        "protocol 2 (GLOBAL opcode)": pickle.dumps(_Touch(), protocol=2),
        "protocol 4 (STACK_GLOBAL)": pickle.dumps(_Touch(), protocol=4),
        "a fitted StandardScaler, protocol 5": pickle.dumps(
            StandardScaler().fit([[0.0], [1.0]]), protocol=5
        ),
        "plain data, no globals": pickle.dumps({"a": [1, 2.5, "x"]}, protocol=4),
        "two functions from one module (memoised module name)": pickle.dumps(
            [os.getcwd, os.getpid], protocol=4
        ),
    }
    for label, data in cases.items():
        got = fn(data)
        expect(isinstance(got, list), f"return a list of 'module.name' strings ({label})")
        # the oracle: the course's symbolic scanner (it never imports what it reads)
        want = scan_bytes(data, allowlist=ALLOW_EVERYTHING).unique_globals
        if sorted(set(got)) != want:
            hint = ""
            if "memoised" in label:
                hint = " — STACK_GLOBAL may take strings fetched from the memo (BINGET)"
            raise CheckFailed(f"{label}: expected {want}, got {sorted(set(got))}{hint}")
    return "finds GLOBAL, INST and STACK_GLOBAL imports, memo included"


@register("02.allowlist")
def _allowlist(answer: Any) -> str:
    expect(
        hasattr(answer, "allows"), "pass an Allowlist (e.g. DEFAULT_ALLOWLIST.with_globals(...))"
    )
    expect(answer.allows("__main__", "ClipOutliers"), "__main__.ClipOutliers must be allowed")
    for module, name in (
        ("__main__", "Evil"),
        ("builtins", "exec"),
        ("posix", "system"),
        ("__main__", "__builtins__"),
    ):
        expect(
            not answer.allows(module, name),
            f"{module}.{name} is allowed too: allow the exact class, not its module",
        )
    expect(answer.allows("sklearn.pipeline", "Pipeline"), "keep the default rules (sklearn)")
    return "allows exactly the class it needs"


def _tiny_package(root: Path, name: str) -> Path:
    from course_pkg.artifacts.manifest import package_model

    source = root / f"{name}.bin"
    source.write_bytes(b"weights")
    return package_model(
        {"model.bin": source}, root / name, name="demo", version="1.0.0", model_file="model.bin"
    ).path


@register("02.is_authentic")
def _is_authentic(answer: Any) -> str:
    from course_pkg.artifacts.signing import generate_keypair, sign_package

    fn = callable_answer(answer, "is_authentic")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        private, public = generate_keypair(root / "keys")
        _, other_public = generate_keypair(root / "other")
        good = _tiny_package(root, "good")
        sign_package(good, private)
        tampered = root / "tampered"
        shutil.copytree(good, tampered)
        (tampered / "model.bin").write_bytes(b"backdoor")
        unsigned = _tiny_package(root, "unsigned")
        cases = [
            (good, public, True, "a correctly signed package"),
            (tampered, public, False, "a package whose model file changed after signing"),
            (good, other_public, False, "a package checked with someone else's key"),
            (unsigned, public, False, "an unsigned package"),
        ]
        for package, key, want, label in cases:
            try:
                got = fn(package, key)
            except NotImplementedError:
                raise
            except Exception as error:
                raise CheckFailed(
                    f"{label}: return {want}, don't raise {type(error).__name__}"
                ) from None
            expect(got is want, f"{label}: expected {want}, got {got!r}")
    return "accepts the authentic package, rejects tampered, wrong-key and unsigned ones"


@register("02.find_malicious")
def _find_malicious(answer: Any) -> str:
    import joblib

    from course_pkg.artifacts.hostile import CORPUS, build

    fn = callable_answer(answer, "find_malicious")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "downloads"
        folder.mkdir()
        (folder / "scores.csv").write_text("id,score\n1,0.3\n")
        (folder / "weights.pkl").write_bytes(pickle.dumps({"w": [0.1, 0.2]}))
        joblib.dump({"coef": [1.0, 2.0]}, folder / "model.joblib")
        markers = Path(tmp) / "markers"
        markers.mkdir()
        chosen = {"trailing-pickle-after-stop", "misleading-extension", "joblib-xz"}
        expected = []
        for entry in CORPUS:
            if entry.name in chosen:
                path, _ = build(entry, markers)
                shutil.move(path, folder / path.name)
                expected.append(path.name)
        got = fn(folder)
        expect(isinstance(got, list), "return a list of file names")
        ran = list(markers.glob("*.MARKER"))
        expect(not ran, "your function ran a payload! never load a file to find out")
        expect(sorted(got) == sorted(expected), f"expected {sorted(expected)}, got {sorted(got)}")
    return "spots the hostile files without loading any"
