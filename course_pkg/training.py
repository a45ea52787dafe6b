"""The course's reference churn model: one function trains it the same way everywhere.

Tests, the server, the Dockerfile and the notebooks all start from ``course-pkg train churn``,
which calls ``train_churn`` and packages the result (``course_pkg.artifacts.package``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

# Importing this module stays light (the CLI builds its parser from these constants);
# numpy, pandas and scikit-learn are imported inside the functions that use them.
SEED = 20251125  # = course_pkg.datasets.churn.SEED (a test checks they agree)

Estimator = Literal["logreg", "random_forest", "hist_gradient_boosting"]
ESTIMATORS: tuple[str, ...] = ("logreg", "random_forest", "hist_gradient_boosting")


def make_estimator(kind: str, seed: int = SEED) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    seed32 = seed % (2**32)
    if kind == "logreg":
        return LogisticRegression(max_iter=1000, C=1.0)
    if kind == "random_forest":
        return RandomForestClassifier(n_estimators=100, max_depth=8, random_state=seed32, n_jobs=1)
    if kind == "hist_gradient_boosting":
        return HistGradientBoostingClassifier(max_iter=100, random_state=seed32)
    raise ValueError(f"unknown estimator {kind!r}; choose one of {', '.join(ESTIMATORS)}")


def build_churn_pipeline(estimator: str = "logreg", seed: int = SEED) -> Any:
    """One-hot encode the categories (fixed, known categories), scale numbers, classify.

    Categories are given explicitly (from the datasheet), so the encoder never depends on
    which values happen to appear in a training split, and unknown values are ignored
    instead of crashing a server (``handle_unknown="ignore"``).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from course_pkg.datasets import CATEGORICAL, CATEGORIES, NUMERIC

    encoder = OneHotEncoder(
        categories=[list(CATEGORIES[c]) for c in CATEGORICAL],
        handle_unknown="ignore",
        sparse_output=False,
    )
    preprocess = ColumnTransformer(
        [("categories", encoder, list(CATEGORICAL)), ("numbers", StandardScaler(), list(NUMERIC))]
    )
    return Pipeline([("preprocess", preprocess), ("model", make_estimator(estimator, seed))])


@dataclass(frozen=True)
class TrainedModel:
    pipeline: Any
    metrics: dict[str, float]
    x_test: pd.DataFrame
    y_test: pd.Series
    seed: int
    estimator: str


def evaluate(pipeline: Any, x: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    proba = pipeline.predict_proba(x)[:, 1]
    return {
        "roc_auc": round(float(roc_auc_score(y, proba)), 6),
        "accuracy": round(float(accuracy_score(y, proba >= 0.5)), 6),
        "log_loss": round(float(log_loss(y, proba)), 6),
        "test_rows": len(y),
    }


def train_churn(estimator: str = "logreg", seed: int = SEED) -> TrainedModel:
    """Fit the reference pipeline on the stratified 80% split; metrics on the other 20%."""
    import numpy as np

    from course_pkg.datasets import load_churn, split_churn

    x_train, x_test, y_train, y_test = split_churn(load_churn(), seed=seed)
    np.random.seed(seed % (2**32))  # belt and braces for any estimator that ignores random_state
    pipeline = build_churn_pipeline(estimator, seed).fit(x_train, y_train)
    return TrainedModel(
        pipeline, evaluate(pipeline, x_test, y_test), x_test, y_test, seed, estimator
    )


def churn_input_schema() -> list[dict[str, Any]]:
    """Column names, dtypes and allowed categories, in the order the model expects."""
    from course_pkg.datasets.churn import churn_input_schema as schema

    return schema()


def churn_output_schema() -> dict[str, Any]:
    from course_pkg.datasets import TARGET

    return {
        "label": {"name": TARGET, "dtype": "int64", "classes": [0, 1]},
        "probabilities": {"dtype": "float64", "shape": [None, 2], "classes": [0, 1]},
    }


DEFAULT_FORMATS: tuple[str, ...] = ("onnx", "skops")


def package_churn(
    out_dir: Any,
    *,
    estimator: str = "logreg",
    version: str = "1.0.0",
    seed: int = SEED,
    formats: tuple[str, ...] = DEFAULT_FORMATS,
    overwrite: bool = False,
) -> Any:
    """Train the reference pipeline and write it as a package (first format = model_file).

    What ``course-pkg train churn --out DIR`` runs. Returns the ``Package``.
    """
    import json
    import tempfile
    from pathlib import Path

    from course_pkg import paths
    from course_pkg.artifacts.formats import FORMATS, save_model
    from course_pkg.artifacts.manifest import package_model
    from course_pkg.datasets.checksums import sha256_file

    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"formats {unknown or formats}: choose from {', '.join(FORMATS)}")
    trained = train_churn(estimator, seed)
    name = f"churn-{estimator.replace('_', '-')}" if estimator != "logreg" else "churn"
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for fmt in formats:
            target = Path(tmp) / FORMATS[fmt]
            if fmt == "onnx":  # parity-checked on the whole test split, and labelled
                from course_pkg.onnx_export import export_sklearn

                model = export_sklearn(
                    trained.pipeline,
                    trained.x_test,
                    # the package's own manifest hashes this file, so it cannot be in it;
                    # the training data's hash ties the graph to what it was fitted on
                    metadata={
                        "model_name": name,
                        "model_version": version,
                        "training_data_sha256": sha256_file(paths.CHURN_CSV),
                    },
                )
                target.write_bytes(model.SerializeToString())
                files[FORMATS[fmt]] = target
            else:
                files[FORMATS[fmt]] = save_model(trained.pipeline, target, fmt)
        return package_model(
            files,
            Path(out_dir),
            name=name,
            version=version,
            model_file=FORMATS[formats[0]],
            training_data=paths.CHURN_CSV,
            seed=seed,
            metrics=trained.metrics,
            input_schema=churn_input_schema(),
            output_schema=churn_output_schema(),
            extra={
                "estimator": estimator,
                # two real held-out rows, as JSON types: the server's OpenAPI example
                "input_example": json.loads(trained.x_test.head(2).to_json(orient="records")),
            },
            overwrite=overwrite,
        )


def _package_onnx_and_skops(estimator: Any, onnx_model: Any, out_dir: Any, **fields: Any) -> Any:
    """Write ``onnx_model`` (served) and ``estimator`` as skops into one package."""
    import tempfile
    from pathlib import Path

    from course_pkg.artifacts.formats import save_model
    from course_pkg.artifacts.manifest import package_model

    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        onnx_path.write_bytes(onnx_model.SerializeToString())
        skops_path = save_model(estimator, Path(tmp) / "model.skops", "skops")
        return package_model(
            {"model.onnx": onnx_path, "model.skops": skops_path},
            Path(out_dir),
            model_file="model.onnx",
            **fields,
        )


def digits_input_schema() -> list[dict[str, Any]]:
    return [
        {
            "name": "pixels",
            "dtype": "float32",
            "shape": [64],
            "image": {"width": 8, "height": 8, "min": 0, "max": 16, "order": "row-major"},
            "description": "an 8×8 grey image, 0 (white) to 16 (black); PNG/JPEG uploads are "
            "converted with course_pkg.datasets.digits.image_to_features",
        }
    ]


DIGITS_MLP_LAYERS = (1024, 1024)


def package_digits(
    out_dir: Any,
    *,
    version: str = "1.0.0",
    seed: int = SEED,
    overwrite: bool = False,
    estimator: str = "logreg",
) -> Any:
    """A digits classifier on 8×8 pixels as an image-model package.

    Trained on scikit-learn's digits minus the 100 images shipped in datasets/digits (which
    are the held-out test set and the parity data). What ``course-pkg train digits`` runs.
    ``estimator="mlp"``: a wide two-layer network (``DIGITS_MLP_LAYERS``, ~1.1M weights,
    ~10 s to train) whose model call costs far more than its per-row work — the kind of model
    micro-batching is for (benchmarks/microbatch_bench.py).
    """

    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from course_pkg import paths
    from course_pkg.datasets.digits import (
        image_to_features,
        load_digit_images,
        load_digits_training,
    )
    from course_pkg.onnx_export import export_sklearn

    x, y = load_digits_training()
    columns = [f"px{i}" for i in range(x.shape[1])]
    if estimator == "logreg":
        model: Any = LogisticRegression(max_iter=3000, random_state=seed % (2**32))
    elif estimator == "mlp":
        from sklearn.neural_network import MLPClassifier

        # 40 epochs reach ~0.97 on the held-out images; full convergence adds nothing here
        model = MLPClassifier(DIGITS_MLP_LAYERS, max_iter=40, random_state=seed % (2**32))
    else:
        raise ValueError(f"unknown digits estimator {estimator!r}; choose logreg or mlp")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Stochastic Optimizer: Maximum iterations")
        model.fit(pd.DataFrame(x, columns=columns), y)
    images = load_digit_images()
    held_out = np.vstack([image_to_features(image.path) for image in images])
    labels = np.array([image.label for image in images])
    frame = pd.DataFrame(held_out, columns=columns)
    accuracy = float(np.mean(model.predict(frame) == labels))
    onnx_model = export_sklearn(
        model,
        frame,
        tensor_input="pixels",
        metadata={"model_name": "digits", "model_version": version},
    )
    return _package_onnx_and_skops(
        model,
        onnx_model,
        out_dir,
        name="digits",
        version=version,
        training_data=None,
        seed=seed,
        metrics={"accuracy_on_shipped_images": round(accuracy, 4), "test_rows": len(labels)},
        input_schema=digits_input_schema(),
        output_schema={
            "label": {"name": "digit", "dtype": "int64", "classes": list(range(10))},
            "probabilities": {
                "dtype": "float32",
                "shape": [None, 10],
                "classes": list(range(10)),
            },
        },
        extra={
            "kind": "image",
            "estimator": estimator,
            "training_images": paths.DIGITS_DIR.name,
        },
        overwrite=overwrite,
    )


def transactions_input_schema() -> list[dict[str, Any]]:
    from course_pkg.datasets.transactions import MERCHANT_CATEGORIES

    return [
        {"name": "amount", "dtype": "float64"},
        {"name": "merchant_category", "dtype": "string", "categories": list(MERCHANT_CATEGORIES)},
        {"name": "hour", "dtype": "int64"},
        {"name": "card_present", "dtype": "int64"},
        {"name": "foreign", "dtype": "int64"},
    ]


def package_fraud(
    out_dir: Any,
    *,
    version: str = "1.0.0",
    train_rows: int = 200_000,
    seed: int = SEED,
    overwrite: bool = False,
) -> Any:
    """A fraud model for the generated card transactions (the batch-scoring story).

    Logistic regression on one-hot merchant category and scaled numbers, trained on the first
    ``train_rows`` generated transactions and checked on the next 50,000. What
    ``course-pkg train fraud`` runs; the ONNX file is parity-checked like churn's.
    """

    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from course_pkg.datasets.transactions import MERCHANT_CATEGORIES, transaction_chunk
    from course_pkg.onnx_export import export_sklearn

    schema = transactions_input_schema()
    features = [c["name"] for c in schema]
    train = transaction_chunk(0, train_rows)
    test = transaction_chunk(train_rows, 50_000)
    numbers = [c for c in features if c != "merchant_category"]
    pipeline = Pipeline(
        [
            (
                "preprocess",
                ColumnTransformer(
                    [
                        (
                            "categories",
                            OneHotEncoder(
                                categories=[list(MERCHANT_CATEGORIES)],
                                handle_unknown="ignore",
                                sparse_output=False,
                            ),
                            ["merchant_category"],
                        ),
                        ("numbers", StandardScaler(), numbers),
                    ]
                ),
            ),
            ("model", LogisticRegression(max_iter=1000, C=1.0)),
        ]
    ).fit(train[features], train["is_fraud"])
    metrics = evaluate(pipeline, test[features], test["is_fraud"])
    model = export_sklearn(
        pipeline,
        test[features].head(5_000),
        metadata={"model_name": "fraud", "model_version": version},
    )
    return _package_onnx_and_skops(
        pipeline,
        model,
        out_dir,
        name="fraud",
        version=version,
        seed=seed,
        metrics=metrics,
        input_schema=schema,
        output_schema={
            "label": {"name": "is_fraud", "dtype": "int64", "classes": [0, 1]},
            "probabilities": {"dtype": "float32", "shape": [None, 2], "classes": [0, 1]},
        },
        extra={
            "estimator": "logreg",
            "training": f"generated transactions 0..{train_rows - 1} (seed 7)",
            "input_example": test[features].head(2).to_dict(orient="records"),
        },
        overwrite=overwrite,
    )
