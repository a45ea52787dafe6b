"""The course's running example: a synthetic telecom churn table.

Why synthetic: the course must work offline and be redistributable, and a generator lets anyone
rebuild the exact bytes of ``datasets/churn.csv`` (a test does). The columns mirror the public
IBM Telco churn sample (tenure, contract, internet service, payment method, charges), and the
label comes from a documented logistic model with noise, so models learn a real but imperfect
signal (logistic regression: ROC AUC 0.79; churn rate 26.6%).
Column meanings: ``datasets/README.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from course_pkg import paths

SEED: Final = 20251125
N_CUSTOMERS: Final = 7_000

ID_COLUMN: Final = "customer_id"
TARGET: Final = "churned"
CATEGORIES: Final[dict[str, tuple[str, ...]]] = {
    "contract": ("month-to-month", "one-year", "two-year"),
    "internet_service": ("dsl", "fiber-optic", "none"),
    "payment_method": ("electronic-check", "mailed-check", "bank-transfer", "credit-card"),
    "paperless_billing": ("no", "yes"),
}
NUMERIC: Final[dict[str, str]] = {
    "senior_citizen": "int64",
    "tenure_months": "int64",
    "monthly_charges": "float64",
    "total_charges": "float64",
    "support_calls_90d": "int64",
}
CATEGORICAL: Final[tuple[str, ...]] = tuple(CATEGORIES)
FEATURES: Final[tuple[str, ...]] = (
    "senior_citizen",
    "tenure_months",
    "contract",
    "internet_service",
    "payment_method",
    "paperless_billing",
    "monthly_charges",
    "total_charges",
    "support_calls_90d",
)
COLUMNS: Final[tuple[str, ...]] = (ID_COLUMN, *FEATURES, TARGET)


def _choice(rng: np.random.Generator, options: tuple[str, ...], p: np.ndarray) -> np.ndarray:
    """Row-wise categorical draw: ``p`` has one row of probabilities per customer."""
    cumulative = p.cumsum(axis=1)
    u = rng.random((p.shape[0], 1))
    idx = (u > cumulative).sum(axis=1)
    chosen: np.ndarray = np.asarray(options, dtype=object)[np.minimum(idx, len(options) - 1)]
    return chosen


def generate_churn(n: int = N_CUSTOMERS, seed: int = SEED) -> pd.DataFrame:
    """Generate the churn table deterministically from ``seed``."""
    rng = np.random.default_rng(seed)
    senior = (rng.random(n) < 0.16).astype(np.int64)
    # Tenure is bimodal in real telco data: many new customers and a loyal long-tail.
    tenure = np.where(rng.random(n) < 0.35, rng.integers(0, 12, n), rng.integers(1, 73, n)).astype(
        np.int64
    )

    long = np.clip(tenure / 72.0, 0, 1)[:, None]
    contract_p = np.hstack([0.75 - 0.55 * long, 0.15 + 0.15 * long, 0.10 + 0.40 * long])
    contract = _choice(rng, CATEGORIES["contract"], contract_p)

    internet = _choice(rng, CATEGORIES["internet_service"], np.tile([0.34, 0.44, 0.22], (n, 1)))
    payment = _choice(rng, CATEGORIES["payment_method"], np.tile([0.34, 0.23, 0.22, 0.21], (n, 1)))
    paperless = np.where(rng.random(n) < 0.59, "yes", "no").astype(object)

    base_charge = np.select(
        [internet == "fiber-optic", internet == "dsl"], [70.0, 45.0], default=20.0
    )
    monthly = np.round(np.clip(base_charge + rng.normal(0, 12, n), 18.25, 118.75), 2)
    # Prices drift over a customer's life, so total is close to, not exactly, tenure × monthly.
    total = np.round(tenure * monthly * rng.uniform(0.93, 1.03, n), 2)
    support = rng.poisson(np.where(internet == "fiber-optic", 1.4, 0.8)).astype(np.int64)

    logit = (
        -1.75
        + 1.05 * (contract == "month-to-month")
        - 0.95 * (contract == "two-year")
        - 0.032 * tenure
        + 0.55 * (internet == "fiber-optic")
        - 0.45 * (internet == "none")
        + 0.50 * (payment == "electronic-check")
        + 0.25 * (paperless == "yes")
        + 0.30 * senior
        + 0.28 * support
        + 0.012 * (monthly - 65.0)
        + rng.normal(0, 0.6, n)
    )
    churned = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)

    frame = pd.DataFrame(
        {
            ID_COLUMN: [f"C{i:06d}" for i in range(1, n + 1)],
            "senior_citizen": senior,
            "tenure_months": tenure,
            "contract": contract,
            "internet_service": internet,
            "payment_method": payment,
            "paperless_billing": paperless,
            "monthly_charges": monthly,
            "total_charges": total,
            "support_calls_90d": support,
            TARGET: churned,
        }
    )
    return frame.loc[:, list(COLUMNS)]


def write_churn(path: Path = paths.CHURN_CSV, n: int = N_CUSTOMERS, seed: int = SEED) -> Path:
    """Write the generated table as CSV with fixed formatting (byte-reproducible)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    generate_churn(n, seed).to_csv(path, index=False, float_format="%.2f", lineterminator="\n")
    return path


def churn_input_schema() -> list[dict[str, Any]]:
    """Column names, dtypes and allowed categories, in the order the model expects."""
    schema: list[dict[str, Any]] = []
    for column in FEATURES:
        if column in CATEGORIES:
            schema.append(
                {"name": column, "dtype": "string", "categories": list(CATEGORIES[column])}
            )
        else:
            schema.append({"name": column, "dtype": NUMERIC[column]})
    return schema


def churn_dtypes() -> dict[str, str]:
    """The dtypes to read the CSV with: strings stay ``str``, numbers keep their width."""
    return {ID_COLUMN: "str", **dict.fromkeys(CATEGORICAL, "str"), **NUMERIC, TARGET: "int64"}


def load_churn(path: Path | None = None) -> pd.DataFrame:
    """Load ``datasets/churn.csv`` with explicit dtypes (never inferred)."""
    source = path or paths.CHURN_CSV
    if not source.exists():
        raise FileNotFoundError(
            f"{source} is missing: restore it with `git checkout -- datasets/` "
            "or rebuild it with `course-pkg data build`"
        )
    return pd.read_csv(source, dtype=churn_dtypes())


def split_churn(
    frame: pd.DataFrame, test_size: float = 0.2, seed: int = SEED
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """Stratified train/test split: X_train, X_test, y_train, y_test (features only in X)."""
    from sklearn.model_selection import train_test_split

    features = frame.loc[:, list(FEATURES)]
    target = frame[TARGET]
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=test_size, random_state=seed % (2**32), stratify=target
    )
    return x_train, x_test, y_train, y_test
