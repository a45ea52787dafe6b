"""Every scikit-learn estimator that fits on a small dataset loads through safe_load.

For each classifier, regressor, transformer and clusterer ``sklearn.utils.all_estimators()``
lists (minus ``SKIPPED``, each with its reason), bare and inside a
``Pipeline(ColumnTransformer(scaler + one-hot), estimator)``: fit once, save as pickle
protocols 2-5, joblib plain and compressed and skops, load each with ``safe_load`` and compare
every output method with the original's, exactly. A safe loader that refuses common models gets
switched off; this is the test that it does not. Also: torch state_dict, whole nn.Module,
TorchScript, numpy .npy/.npz.
"""

from __future__ import annotations

import inspect
import pickle
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.utils import all_estimators

from course_pkg.artifacts import safe_load

KINDS = ["classifier", "regressor", "transformer", "cluster"]
FORMATS = ["pickle-p2", "pickle-p3", "pickle-p4", "pickle-p5", "joblib", "joblib-zlib", "skops"]
OUTPUTS = ("predict", "predict_proba", "decision_function", "transform", "score_samples")
FITTED = ("labels_", "embedding_")  # clusterers / embeddings without predict or transform
NUMERIC = ["a", "b", "c", "d"]

# Estimators left out, and why. Everything else must fit, save, load and agree.
SKIPPED: dict[str, str] = {
    "ColumnTransformer": "a composition tool: it is inside every pipeline case",
    "FeatureUnion": "a composition tool: needs its transformer list",
    "DictVectorizer": "fits lists of dicts, not a numeric table",
    "FeatureHasher": "hashes strings or dicts, not a numeric table",
    "HashingVectorizer": "text input",
    "PatchExtractor": "image input (n_images, height, width)",
    "LabelBinarizer": "fits the target y only",
    "LabelEncoder": "fits the target y only",
    "MultiLabelBinarizer": "fits the target y only",
    "KernelCenterer": "needs a square kernel matrix",
    "IsotonicRegression": "one input feature only",
    "MultiTaskElasticNet": "needs a 2-D target",
    "MultiTaskElasticNetCV": "needs a 2-D target",
    "MultiTaskLasso": "needs a 2-D target",
    "MultiTaskLassoCV": "needs a 2-D target",
    "ClassifierChain": "needs a 2-D (multilabel) target",
    "RegressorChain": "needs a 2-D target",
    "MultiOutputClassifier": "needs a 2-D (multilabel) target",
    "MultiOutputRegressor": "needs a 2-D target",
    "SparseCoder": "needs a precomputed dictionary; has no fitted state to save",
    "GammaRegressor": "needs a strictly positive target (the shared target has zeros)",
    "TunedThresholdClassifierCV": (
        "refused on purpose: it stores a _CurveScorer, whose __call__ looks methods up by name "
        "(a getattr gadget); see test_a_callable_helper_is_refused_until_explicitly_allowed"
    ),
}
# skops cannot save these at all (UnsupportedTypeException); every other format is tested.
NOT_SKOPS: dict[str, str] = {"Birch": "skops 0.16: 'Objects of type Birch are not supported'"}
# Smaller than the defaults only to keep 300+ fits fast on 2 cores; the saved structure is
# the same (same classes, same Cython types), just fewer trees/iterations.
SMALLER: dict[str, dict[str, Any]] = {
    **{
        name: {"n_estimators": 10}
        for name in (
            "AdaBoostClassifier",
            "AdaBoostRegressor",
            "ExtraTreesClassifier",
            "ExtraTreesRegressor",
            "GradientBoostingClassifier",
            "GradientBoostingRegressor",
            "IsolationForest",
            "RandomForestClassifier",
            "RandomForestRegressor",
            "RandomTreesEmbedding",
            "BaggingClassifier",
            "BaggingRegressor",
        )
    },
    "HistGradientBoostingClassifier": {"max_iter": 10},
    "HistGradientBoostingRegressor": {"max_iter": 10},
    "TSNE": {"max_iter": 250, "perplexity": 5.0},
    "QuadraticDiscriminantAnalysis": {"reg_param": 0.1},  # one-hot columns are collinear
}
# Only the pipeline case is left out for these (the bare estimator is tested).
SKIPPED_IN_PIPELINE: dict[str, str] = {}

_REGRESSORS = {name for name, _ in all_estimators(type_filter="regressor")}
_ESTIMATORS = dict(all_estimators(type_filter=KINDS))
NAMES = sorted(set(_ESTIMATORS) - set(SKIPPED))
CASES = [(name, "bare") for name in NAMES] + [
    (name, "pipeline") for name in NAMES if name not in SKIPPED_IN_PIPELINE
]


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({column: rng.random(60) for column in NUMERIC})
    frame["city"] = rng.choice(["north", "south", "east"], 60)
    target = ((frame["a"] + frame["b"]) > 1).astype(int).to_numpy()
    return frame, target


def _estimator(name: str) -> Any:
    """Defaults, plus what a meta-estimator needs (an inner model) and a fixed random_state."""
    from sklearn.linear_model import LogisticRegression, Ridge

    cls = _ESTIMATORS[name]
    regressor = name in _REGRESSORS
    parameters = inspect.signature(cls).parameters
    params: dict[str, Any] = {}
    required = inspect.Parameter.empty
    if "estimator" in parameters and (
        parameters["estimator"].default is required or name == "SelfTrainingClassifier"
    ):
        params["estimator"] = Ridge() if regressor else LogisticRegression()
    if "estimators" in parameters:
        params["estimators"] = [
            ("a", Ridge() if regressor else LogisticRegression()),
            ("b", Ridge(alpha=2.0) if regressor else LogisticRegression(C=0.5)),
        ]
    if "random_state" in parameters:
        params["random_state"] = 0
    if name in {"CCA", "PLSCanonical", "PLSSVD", "PLSRegression"}:
        params["n_components"] = 1
    if name in {"GaussianRandomProjection", "SparseRandomProjection"}:
        params["n_components"] = 2
    with warnings.catch_warnings():  # deprecated estimators (PassiveAggressive*) warn here
        warnings.filterwarnings("ignore", "Class .* is deprecated", FutureWarning)
        return cls(**params, **SMALLER.get(name, {}))


def _fit(name: str, variant: str) -> tuple[Any, Any]:
    """(fitted model, the input it is evaluated on)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, OneHotEncoder

    frame, target = _data()
    model = _estimator(name)
    features: Any = frame[NUMERIC].to_numpy()
    if variant == "pipeline":
        prep = ColumnTransformer(
            [("num", MinMaxScaler(), NUMERIC), ("cat", OneHotEncoder(), ["city"])],
            sparse_threshold=0,
        )
        model, features = Pipeline([("prep", prep), ("model", model)]), frame
    with warnings.catch_warnings():
        # 60 rows: convergence and small-sample warnings are expected and beside the point.
        warnings.simplefilter("ignore")
        model.fit(features, target)
    return model, features


def _naive_load(path: Path, fmt: str) -> Any:
    """The format's own unrestricted loader (trusted here: the test wrote the file)."""
    if fmt.startswith("pickle"):
        return pickle.loads(path.read_bytes())
    if fmt.startswith("joblib"):
        return joblib.load(path)
    import skops.io

    return skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))


def _save(model: Any, path: Path, fmt: str) -> Path:
    if fmt.startswith("pickle"):
        path.write_bytes(pickle.dumps(model, protocol=int(fmt[-1])))
    elif fmt == "joblib":
        joblib.dump(model, path, compress=0)
    elif fmt == "joblib-zlib":
        joblib.dump(model, path, compress=3)
    else:
        import skops.io

        skops.io.dump(model, path)
    return path


def _outputs(model: Any, features: Any) -> dict[str, Any]:
    """Every output method's result (or the exception it raises), and fitted labels."""
    import scipy.sparse

    found: dict[str, Any] = {}
    for method in OUTPUTS:
        if not hasattr(model, method):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = getattr(model, method)(features)
        except Exception as error:
            value = f"raises {type(error).__name__}"
        found[method] = value.toarray() if scipy.sparse.issparse(value) else value
    final = model[-1] if hasattr(model, "steps") else model
    for attribute in FITTED:
        if hasattr(final, attribute):
            found[attribute] = getattr(final, attribute)
    return found


def test_the_zoo_is_the_whole_installed_scikit_learn() -> None:
    assert len(NAMES) >= 150, NAMES
    assert set(SKIPPED) <= set(_ESTIMATORS), set(SKIPPED) - set(_ESTIMATORS)
    assert all(SKIPPED.values()) and all(SKIPPED_IN_PIPELINE.values())


@pytest.mark.parametrize(("name", "variant"), CASES, ids=[f"{n}-{v}" for n, v in CASES])
def test_estimator_loads_identically_in_every_format(
    name: str, variant: str, tmp_path: Path
) -> None:
    """safe_load gives exactly what the format's own loader gives, and that is the original
    model's output up to float rounding (some BLAS paths depend on array alignment, so even a
    plain pickle.loads copy can differ from the in-memory model in the last bit)."""
    from threadpoolctl import threadpool_limits

    formats = [f for f in FORMATS if not (f == "skops" and name in NOT_SKOPS)]
    with threadpool_limits(limits=1):  # 2 shared cores: OpenMP/BLAS threads only contend
        model, features = _fit(name, variant)
        files = {fmt: _save(model, tmp_path / f"model-{fmt}.bin", fmt) for fmt in formats}
        expected = _outputs(model, features)
        assert expected, f"{name} has no output to compare"
        for fmt, path in files.items():
            with warnings.catch_warnings():
                # deprecated estimators (PassiveAggressive*) warn when constructed/unpickled
                warnings.filterwarnings("ignore", "Class .* is deprecated", FutureWarning)
                got = _outputs(safe_load(path), features)
                reference = _outputs(_naive_load(path, fmt), features)
            assert got.keys() == expected.keys(), fmt
            for key, value in expected.items():
                if isinstance(value, str):
                    assert got[key] == reference[key] == value, (fmt, key)
                    continue
                np.testing.assert_array_equal(got[key], reference[key], err_msg=f"{fmt}: {key}")
                np.testing.assert_allclose(
                    got[key], value, rtol=1e-12, atol=1e-12, err_msg=f"{fmt}: {key}"
                )


def test_a_callable_helper_is_refused_until_explicitly_allowed(tmp_path: Path) -> None:
    """TunedThresholdClassifierCV keeps a scorer object that dispatches methods by name; the
    derived allowlist does not grant callable helpers, and says which global to add."""
    from course_pkg.artifacts import DEFAULT_ALLOWLIST, UnsafeArtifactError

    frame, target = _data()
    features = frame[NUMERIC].to_numpy()
    model = _estimator("TunedThresholdClassifierCV").fit(features, target)
    path = _save(model, tmp_path / "tuned.pkl", "pickle-p5")
    with pytest.raises(UnsafeArtifactError, match=r"sklearn\.metrics\._scorer\._CurveScorer"):
        safe_load(path)
    trusted = DEFAULT_ALLOWLIST.with_globals(
        [
            "sklearn.metrics._scorer._CurveScorer",
            "sklearn.metrics._scorer._Scorer",
            "sklearn.metrics._classification.balanced_accuracy_score",
        ]
    )
    np.testing.assert_array_equal(
        safe_load(path, allowlist=trusted).predict(features), model.predict(features)
    )


def test_torch_state_dict_whole_module_and_torchscript_load(tmp_path: Path) -> None:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(8, 2)
    ).eval()
    x = torch.randn(5, 4)
    torch.save(net.state_dict(), tmp_path / "state.pt")
    state = safe_load(tmp_path / "state.pt")
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    torch.save(net, tmp_path / "whole.pt")
    torch.testing.assert_close(safe_load(tmp_path / "whole.pt")(x), net(x), rtol=0, atol=0)
    torch.jit.save(torch.jit.script(net), tmp_path / "script.pt")
    torch.testing.assert_close(safe_load(tmp_path / "script.pt")(x), net(x), rtol=0, atol=0)


def test_numpy_npy_and_npz_load(tmp_path: Path) -> None:
    arrays = {"w": np.arange(12.0).reshape(3, 4), "labels": np.array(["a", "bc"])}
    np.save(tmp_path / "w.npy", arrays["w"])
    np.testing.assert_array_equal(safe_load(tmp_path / "w.npy"), arrays["w"])
    np.savez_compressed(tmp_path / "all.npz", **arrays)
    loaded = safe_load(tmp_path / "all.npz")
    assert loaded.keys() == arrays.keys()
    for key, value in arrays.items():
        np.testing.assert_array_equal(loaded[key], value)
