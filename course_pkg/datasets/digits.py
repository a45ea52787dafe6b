"""Handwritten digit images for image payloads (PNG uploads to the server).

The images come from scikit-learn's bundled digits (UCI optdigits, 8×8, 16 grey levels), so no
download is needed. We ship a small held-out set as 32×32 greyscale PNGs — the size a person
would upload — and models train on the remaining sklearn rows, so the shipped PNGs are unseen
test images. Upscaling is nearest-neighbour by 4, so resizing back to 8×8 with a box filter and
rounding to the nearest of sklearn's 17 levels recovers the original pixels exactly.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from course_pkg import paths

# Defined in the standalone demo module (copied into Spaces and Azure ML folders), so every
# consumer turns an image into features the same way.
from course_pkg.demos.inference import image_to_features as image_to_features

PER_CLASS: Final = 10
SCALE: Final = 4
LABELS_CSV: Final = "labels.csv"


@dataclass(frozen=True)
class DigitImage:
    path: Path
    label: int
    sklearn_index: int


def held_out_indices(per_class: int = PER_CLASS) -> list[int]:
    """Indices into ``sklearn.datasets.load_digits()`` of the shipped images: the last
    ``per_class`` samples of each digit (deterministic, no randomness involved)."""
    from sklearn.datasets import load_digits

    target = load_digits().target
    chosen: list[int] = []
    for digit in range(10):
        chosen.extend(int(i) for i in np.flatnonzero(target == digit)[-per_class:])
    return sorted(chosen)


def to_pixels(image_8x8: np.ndarray) -> np.ndarray:
    """sklearn's 0-16 intensities → 0-255 uint8, upscaled ``SCALE``× (ink is bright)."""
    grey = np.round(image_8x8 * (255.0 / 16.0)).astype(np.uint8)
    return np.kron(grey, np.ones((SCALE, SCALE), dtype=np.uint8))


def write_digit_images(out_dir: Path = paths.DIGITS_DIR, per_class: int = PER_CLASS) -> Path:
    """Write the held-out PNGs and ``labels.csv`` (file, label, sklearn_index)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("digit_*.png"):
        old.unlink()
    rows = []
    for index in held_out_indices(per_class):
        label = int(digits.target[index])
        name = f"digit_{label}_{index:04d}.png"
        # optimize=False and no metadata: the bytes depend only on the pixels (reproducible).
        Image.fromarray(to_pixels(digits.images[index]), mode="L").save(out_dir / name)
        rows.append((name, label, index))
    with (out_dir / LABELS_CSV).open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["file", "label", "sklearn_index"])
        writer.writerows(rows)
    return out_dir


def load_digit_images(directory: Path | None = None) -> list[DigitImage]:
    """The shipped digit PNGs with their labels, in file order."""
    source = directory or paths.DIGITS_DIR
    labels = source / LABELS_CSV
    if not labels.exists():
        raise FileNotFoundError(
            f"{labels} is missing: restore datasets/ with git or run `course-pkg data build`"
        )
    with labels.open(newline="") as handle:
        return [
            DigitImage(source / row["file"], int(row["label"]), int(row["sklearn_index"]))
            for row in csv.DictReader(handle)
        ]


def load_digits_training() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's digits minus the shipped images: X (n, 64) in 0-16, y (n,)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = np.setdiff1d(np.arange(len(digits.target)), held_out_indices())
    return digits.data[keep], digits.target[keep]
