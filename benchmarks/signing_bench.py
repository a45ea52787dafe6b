"""Sign and verify time for model-signing packages, against a sha256-of-every-file floor.

    .venv/bin/python benchmarks/signing_bench.py [--repeats 5] [--big-mb 100 200]

For the churn package and generated packages of ``--big-mb`` MB each (random bytes, one file:
the worst case for hashing, nothing compresses or repeats), prints the median seconds of:
``sign_package``, ``verify_package(..., key)`` (model-signing verification + the manifest
hash check), ``model-signing verify`` alone, and the floor, sha256 over every file once.
The library is imported before timing: its import (sigstore's pydantic models, ~2-5 s here)
is a once-per-process cost, printed separately. Numbers go to docs/ARTIFACTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from course_pkg.artifacts.manifest import package_model, verify_package
from course_pkg.artifacts.signing import generate_keypair, sign_package
from course_pkg.training import package_churn


def median_seconds(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def sha256_floor(package: Path) -> None:
    for path in sorted(p for p in package.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)


def big_package(root: Path, megabytes: int) -> Path:
    root.mkdir(parents=True)
    weights = root / "weights.bin"
    with weights.open("wb") as handle:
        for _ in range(megabytes):
            handle.write(os.urandom(1 << 20))
    return package_model(
        {"weights.bin": weights},
        root / "big",
        name="big",
        version="1.0.0",
        model_file="weights.bin",
    ).path


def measure(name: str, package: Path, keys: tuple[Path, Path], repeats: int) -> None:
    import model_signing

    private, public = keys
    size = sum(p.stat().st_size for p in package.rglob("*") if p.is_file())

    def sign() -> None:
        (package / "model.sig").unlink(missing_ok=True)
        sign_package(package, private)

    signing = median_seconds(sign, repeats)
    verifying = median_seconds(lambda: verify_package(package, public), repeats)
    config = model_signing.verifying.Config()  # type: ignore[no-untyped-call]
    verifier = config.use_elliptic_key_verifier(public_key=public)
    library = median_seconds(lambda: verifier.verify(package, package / "model.sig"), repeats)
    floor = median_seconds(lambda: sha256_floor(package), repeats)
    print(
        f"{name:<16} {size / 1e6:>9.2f} {signing:>8.3f} {verifying:>10.3f} {library:>11.3f} "
        f"{floor:>8.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--big-mb", type=int, nargs="+", default=[100, 200])
    args = parser.parse_args()
    started = time.perf_counter()
    import model_signing  # noqa: F401  (timed once: a per-process cost)

    print(f"import model_signing: {time.perf_counter() - started:.2f} s (once per process)")
    work = Path(tempfile.mkdtemp(prefix="signing-bench-"))
    try:
        keys = generate_keypair(work / "keys")
        churn = package_churn(work / "churn", formats=("onnx", "skops")).path
        print(f"median of {args.repeats}; seconds (MB = package size)")
        header = ("package", "MB", "sign", "verify_pkg", "ms-verify", "sha256")
        print(
            f"{header[0]:<16} {header[1]:>9} {header[2]:>8} {header[3]:>10} {header[4]:>11} "
            f"{header[5]:>8}"
        )
        measure("churn", churn, keys, args.repeats)
        for megabytes in args.big_mb:  # several sizes: shows how the cost scales
            big = big_package(work / f"big{megabytes}", megabytes)
            measure(f"random {megabytes} MB", big, keys, args.repeats)
            shutil.rmtree(big.parent)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
