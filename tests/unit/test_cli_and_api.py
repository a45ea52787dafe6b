"""The console scripts and the public API behave as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import course_pkg
import grader


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "course_pkg", *args], capture_output=True, text=True, check=False
    )


def test_public_api_exports_exist() -> None:
    for module in (course_pkg, grader):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name} is in __all__ but missing"


def test_import_is_light() -> None:
    heavy = "('numpy', 'pandas', 'torch', 'sklearn')"
    code = (
        "import sys, course_pkg, course_pkg.cli; course_pkg.cli.build_parser(); "
        f"print(sorted(m for m in {heavy} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("course-pkg ")


def test_doctor_passes_here() -> None:
    result = run("doctor")
    assert result.returncode == 0, result.stdout
    assert "PASS: ready for the course" in result.stdout


def test_data_verify() -> None:
    assert run("data", "verify").returncode == 0


def test_transactions_cli_generates_and_rejects_bad_arguments(tmp_path: Path) -> None:
    out = tmp_path / "tx.csv"
    ok = run("data", "transactions", "--rows", "2000", "--out", str(out))
    assert ok.returncode == 0 and "2,000 rows" in ok.stdout
    assert len(out.read_text().splitlines()) == 2001

    bad_format = run("data", "transactions", "--rows", "10", "--out", str(tmp_path / "tx.json"))
    assert bad_format.returncode == 2 and ".csv or .parquet" in bad_format.stderr
    negative = run("data", "transactions", "--rows", "-1", "--out", str(out))
    assert negative.returncode == 2 and "--rows" in negative.stderr


def test_unknown_command_is_a_usage_error() -> None:
    result = run("frobnicate")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_training_seed_constant_matches_the_dataset_seed() -> None:
    from course_pkg.datasets.churn import SEED as DATA_SEED
    from course_pkg.training import SEED

    assert SEED == DATA_SEED
