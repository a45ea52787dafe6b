"""CSV and image payloads: parse, validate, predict, and format the answers.

CSV is handled in two passes over a spooled copy of the body, so memory stays flat in the
number of rows *and* a bad row anywhere gives a 422 before the first output byte is sent:
pass 1 validates every chunk (collecting up to 100 problems with absolute row numbers), pass
2 predicts chunk by chunk and streams CSV out. Extra columns (an id, say) pass through.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import IO

import numpy as np
import pandas as pd

from course_pkg.errors import ErrorDetail
from course_pkg.serving.errors import ApiError, invalid_input
from course_pkg.serving.registry import ServedModel

MAX_IMAGE_SIDE = 4096


def _text_columns(served: ServedModel) -> dict[str, str]:
    return {
        c["name"]: "str"
        for c in served.manifest.get("input_schema", [])
        if c.get("categories") or c.get("dtype") in {"string", "str", "object"}
    }


def csv_chunks(source: IO[bytes], served: ServedModel, chunk_rows: int) -> Iterator[pd.DataFrame]:
    source.seek(0)
    try:
        reader = pd.read_csv(source, chunksize=chunk_rows, dtype=_text_columns(served))
        yield from reader
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        if isinstance(error, pd.errors.EmptyDataError):
            raise invalid_input(
                [
                    {
                        "field": "(body)",
                        "row": None,
                        "message": "the CSV is empty: send a header and rows",
                    }
                ]
            ) from None
        raise invalid_input(
            [{"field": "(body)", "row": None, "message": f"could not parse the CSV: {error}"}]
        ) from None


def validate_csv(source: IO[bytes], served: ServedModel, chunk_rows: int) -> int:
    """Pass 1: the number of rows, or a 422 listing problems (row numbers count from 0)."""
    problems: list[ErrorDetail] = []
    rows = 0
    for chunk in csv_chunks(source, served, chunk_rows):
        for problem in served.predictor.problems(chunk):
            row = problem["row"]
            if row is not None:
                problem = {**problem, "row": row + rows}
            problems.append(problem)
        rows += len(chunk)
        if len(problems) >= 100 or any(p.get("row") is None for p in problems):
            break  # a missing column repeats in every chunk; 100 problems are enough to act on
    if problems:
        raise invalid_input(problems[:100])
    if rows == 0:
        raise invalid_input(
            [{"field": "(body)", "row": None, "message": "no rows: send at least one"}]
        )
    return rows


def predict_frame(served: ServedModel, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return served.predictor.predict_both(frame, validate=False)


def with_predictions(served: ServedModel, frame: pd.DataFrame) -> pd.DataFrame:
    labels, proba = predict_frame(served, frame)
    out = frame.copy()
    out["prediction"] = labels
    for index, cls in enumerate(served.classes or range(proba.shape[1])):
        out[f"probability_{cls}"] = proba[:, index].astype(np.float64).round(7)
    out["model_version"] = served.version
    return out


def stream_csv(source: IO[bytes], served: ServedModel, chunk_rows: int) -> Iterator[bytes]:
    """Pass 2: predicted CSV, one chunk at a time (closes ``source`` when done)."""
    try:
        for number, chunk in enumerate(csv_chunks(source, served, chunk_rows)):
            buffer = io.StringIO()
            with_predictions(served, chunk).to_csv(buffer, index=False, header=number == 0)
            yield buffer.getvalue().encode()
    finally:
        source.close()


def image_features(data: bytes, served: ServedModel) -> np.ndarray:
    """PNG/JPEG bytes → the (1, 64) row the digits model takes; 422 for anything else."""
    from PIL import Image, UnidentifiedImageError

    from course_pkg.datasets.digits import image_to_features

    if served.kind != "image":
        raise ApiError(
            415, "unsupported_media_type", f"{served.name} takes tabular rows, not images"
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in {"PNG", "JPEG"}:
                raise invalid_input(
                    [
                        {
                            "field": "file",
                            "row": None,
                            "message": f"{image.format} image: send PNG or JPEG",
                        }
                    ]
                )
            if max(image.size) > MAX_IMAGE_SIDE:
                raise invalid_input(
                    [
                        {
                            "field": "file",
                            "row": None,
                            "message": f"image is {image.size[0]}×{image.size[1]}; at most "
                            f"{MAX_IMAGE_SIDE} pixels a side",
                        }
                    ]
                )
        return image_to_features(data)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise invalid_input(
            [{"field": "file", "row": None, "message": f"not a readable PNG/JPEG image ({error})"}]
        ) from None
