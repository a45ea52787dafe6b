"""Shipped data: checksums hold and catch tampering; generators rebuild the exact bytes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from course_pkg import paths
from course_pkg.datasets import (
    FEATURES,
    TARGET,
    generate_churn,
    image_to_features,
    iter_transactions,
    load_churn,
    load_digit_images,
    load_digits_training,
    sha256_file,
    verify_sums,
    write_churn,
    write_digit_images,
    write_transactions,
)


def test_shipped_files_match_sha256sums() -> None:
    assert verify_sums() == []


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "datasets"
    shutil.copytree(paths.DATASETS, copy)
    assert verify_sums(copy) == []
    return copy


def test_checksums_catch_a_changed_file(data_copy: Path) -> None:
    with (data_copy / "churn.csv").open("a") as handle:
        handle.write("C999999,0,1,one-year,dsl,mailed-check,no,20.00,20.00,0,0\n")
    assert verify_sums(data_copy) == [
        f"churn.csv: sha256 {sha256_file(data_copy / 'churn.csv')[:12]}… differs from "
        f"SHA256SUMS {sha256_file(paths.CHURN_CSV)[:12]}…"
    ]


def test_checksums_catch_missing_and_unlisted_files(data_copy: Path) -> None:
    victim = next((data_copy / "digits").glob("*.png"))
    victim.unlink()
    (data_copy / "digits" / "extra.png").write_bytes(b"\x89PNG")
    problems = verify_sums(data_copy)
    assert any("missing" in p and victim.name in p for p in problems)
    assert any("extra.png" in p and "not listed" in p for p in problems)


def test_checksums_report_a_missing_sums_file(data_copy: Path) -> None:
    (data_copy / "SHA256SUMS").unlink()
    assert "missing" in verify_sums(data_copy)[0]


def test_churn_generator_rebuilds_the_committed_bytes(tmp_path: Path) -> None:
    rebuilt = write_churn(tmp_path / "churn.csv")
    assert sha256_file(rebuilt) == sha256_file(paths.CHURN_CSV)


def test_digit_images_rebuild_to_the_committed_bytes(tmp_path: Path) -> None:
    write_digit_images(tmp_path)
    for committed in sorted(paths.DIGITS_DIR.iterdir()):
        assert sha256_file(tmp_path / committed.name) == sha256_file(committed), committed.name


def test_churn_table_has_schema_and_signal() -> None:
    frame = load_churn()
    assert len(frame) == 7_000
    assert list(frame.columns) == ["customer_id", *FEATURES, TARGET]
    assert frame["customer_id"].is_unique
    assert frame.isna().sum().sum() == 0
    assert 0.2 < frame[TARGET].mean() < 0.35
    # the label depends on the features the way the datasheet says
    by_contract = frame.groupby("contract")[TARGET].mean()
    assert by_contract["month-to-month"] > 2 * by_contract["two-year"]


def test_different_seed_gives_different_data() -> None:
    assert not generate_churn(200, seed=1).equals(generate_churn(200, seed=2))


def test_load_churn_explains_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="course-pkg data build"):
        load_churn(tmp_path / "nope.csv")


def test_digit_images_are_held_out_from_training() -> None:
    images = load_digit_images()
    assert len(images) == 100
    assert sorted({img.label for img in images}) == list(range(10))
    x_train, _ = load_digits_training()
    assert len(x_train) == 1797 - 100
    from sklearn.datasets import load_digits

    original = load_digits()
    for image in images[:20]:
        # the PNG decodes back to the sklearn row it came from (to the nearest grey level)
        features = image_to_features(image.path)[0]
        np.testing.assert_array_equal(np.round(features), original.data[image.sklearn_index])


def test_transactions_are_deterministic_and_prefix_consistent() -> None:
    small = pd.concat(iter_transactions(1_000, chunk_rows=300))
    big = pd.concat(iter_transactions(2_000, chunk_rows=300))
    pd.testing.assert_frame_equal(
        small.reset_index(drop=True), big.head(1_000).reset_index(drop=True)
    )
    assert small["transaction_id"].tolist() == list(range(1_000))
    assert 0 < small["is_fraud"].mean() < 0.2


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_transactions_round_trips(tmp_path: Path, suffix: str) -> None:
    out = write_transactions(tmp_path / f"tx{suffix}", 1_234, chunk_rows=500)
    frame = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert len(frame) == 1_234
    assert not list(tmp_path.glob("*.partial"))


def test_write_transactions_refuses_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        write_transactions(tmp_path / "tx.json", 10)


def test_churn_signal_is_learnable_but_imperfect() -> None:
    """The datasheet's claim: a plain logistic-regression pipeline gets ROC AUC ≈ 0.79."""
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from course_pkg.datasets import CATEGORICAL, NUMERIC, split_churn

    x_train, x_test, y_train, y_test = split_churn(load_churn())
    model = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(), list(CATEGORICAL)), (StandardScaler(), list(NUMERIC))
        ),
        LogisticRegression(max_iter=1000),
    ).fit(x_train, y_train)
    auc = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])
    assert 0.77 < auc < 0.81
