"""Shipped and generated data: loaders, generators and checksums (see datasets/README.md)."""

from course_pkg.datasets.checksums import sha256_file, verify_sums, write_sums
from course_pkg.datasets.churn import (
    CATEGORICAL,
    CATEGORIES,
    FEATURES,
    NUMERIC,
    TARGET,
    generate_churn,
    load_churn,
    split_churn,
    write_churn,
)
from course_pkg.datasets.digits import (
    DigitImage,
    image_to_features,
    load_digit_images,
    load_digits_training,
    write_digit_images,
)
from course_pkg.datasets.transactions import iter_transactions, write_transactions

__all__ = [
    "CATEGORICAL",
    "CATEGORIES",
    "FEATURES",
    "NUMERIC",
    "TARGET",
    "DigitImage",
    "build_all",
    "generate_churn",
    "image_to_features",
    "iter_transactions",
    "load_churn",
    "load_digit_images",
    "load_digits_training",
    "sha256_file",
    "split_churn",
    "verify_sums",
    "write_churn",
    "write_digit_images",
    "write_sums",
    "write_transactions",
]


def build_all() -> list[str]:
    """Regenerate every shipped data file and SHA256SUMS; returns the files written."""
    from course_pkg import paths

    write_churn()
    write_digit_images()
    write_sums()
    return sorted(
        p.relative_to(paths.DATASETS).as_posix() for p in paths.DATASETS.rglob("*") if p.is_file()
    )
