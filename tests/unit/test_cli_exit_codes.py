"""`course-pkg`'s exit-code contract (cli.py's docstring), through the installed console script.

0 success; 1 the thing checked or attempted is not OK; 2 usage. One map in ``main`` decides,
and ``train`` refuses the flags a model would ignore instead of ignoring them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from course_pkg.artifacts.errors import IntegrityError, UnsupportedFormatError
from course_pkg.cli import exit_code
from course_pkg.errors import CommandFailed, CourseError, UsageError
from course_pkg.onnx_export import InputError, ParityError

COURSE_PKG = Path(sys.executable).with_name("course-pkg")


def course_pkg(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COURSE_PKG), *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def signed_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`train digits` with every flag digits honours: --seed, --estimator, --sign-key."""
    root = tmp_path_factory.mktemp("cli")
    assert course_pkg("keygen", "--out", "keys", cwd=root).returncode == 0
    trained = course_pkg(
        "train", "digits", "--out", "pkg", "--seed", "3", "--estimator", "logreg",
        "--sign-key", "keys/signing_key.pem", cwd=root,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "signed with keys/signing_key.pem" in trained.stdout
    return root


def test_exit_0_train_digits_honours_seed_and_sign_key(signed_digits: Path) -> None:
    manifest = json.loads((signed_digits / "pkg" / "manifest.json").read_text())
    assert manifest["training"]["seed"] == 3
    verified = course_pkg("verify", "pkg", "--key", "keys/signing_key.pub", cwd=signed_digits)
    assert verified.returncode == 0, verified.stderr
    assert "signature valid" in verified.stdout


@pytest.mark.parametrize(
    ("model", "flags", "says"),
    [
        ("fraud", ["--estimator", "logreg"], "--estimator applies to churn"),
        ("digits", ["--estimator", "random_forest"], "digits takes logreg, mlp"),
        ("digits", ["--formats", "onnx"], "--formats applies to churn only"),
        ("fraud", ["--formats", "onnx,skops"], "--formats applies to churn only"),
        ("digits", ["--sign-key", "missing.pem"], "--sign-key missing.pem: no such file"),
        ("titanic", [], "choose churn, digits or fraud"),
    ],
)
def test_exit_2_train_refuses_a_flag_the_model_would_ignore(
    tmp_path: Path, model: str, flags: list[str], says: str
) -> None:
    refused = course_pkg("train", model, "--out", "pkg", *flags, cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("error: ") and says in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / "pkg").exists()  # refused before any training


def test_exit_2_argparse_usage_error(tmp_path: Path) -> None:
    result = course_pkg("train", "--out", "pkg", cwd=tmp_path)  # no model
    assert result.returncode == 2 and "usage:" in result.stderr


def test_exit_1_a_package_that_fails_verification(signed_digits: Path, tmp_path: Path) -> None:
    import shutil

    package = shutil.copytree(signed_digits / "pkg", tmp_path / "tampered")
    (package / "model.onnx").write_bytes(b"tampered")
    verified = course_pkg("verify", str(package), cwd=tmp_path)
    assert verified.returncode == 1 and "FAIL IntegrityError" in verified.stderr
    # export-onnx used to answer 2 for this: a package that fails verification is exit 1
    exported = course_pkg("export-onnx", str(package), "--out", "onnx", cwd=tmp_path)
    assert exported.returncode == 1, exported.stderr
    assert "FAIL" in exported.stderr and "Traceback" not in exported.stderr


def test_exit_1_an_external_command_fails(tmp_path: Path) -> None:
    """No such image (or no engine): the Docker SDK's error, said plainly, exit 1."""
    result = course_pkg("image", "publish", "no-such-image:never", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UsageError("x"), 2),
        (FileExistsError("x"), 2),
        (FileNotFoundError("x"), 2),
        (ValueError("x"), 2),
        (InputError([{"field": "age", "row": 0, "message": "missing"}]), 2),
        (IntegrityError("pkg", ["model.onnx: sha256 differs"]), 1),
        (UnsupportedFormatError("x"), 1),
        (ParityError.__new__(ParityError), 1),  # (its __init__ wants a whole ParityReport)
        (CommandFailed("x"), 1),
        (CourseError("x"), 1),
        (PermissionError("x"), 1),
        (KeyError("x"), None),  # a bug: main re-raises it with its traceback
    ],
)
def test_one_map_from_exception_to_exit_code(error: BaseException, code: int | None) -> None:
    assert exit_code(error) == code
