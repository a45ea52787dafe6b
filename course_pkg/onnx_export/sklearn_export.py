"""A whole scikit-learn pipeline → one checked ONNX graph that agrees with scikit-learn.

**Why numbers enter as float64.** scikit-learn preprocesses in float64; its trees then compare
``float32(x_scaled)`` with float32 thresholds. An ONNX graph that scales in float32 computes
``x_scaled`` a few ulps away from ``float32(x_scaled_float64)``, and a few ulps are enough to
send a row down the other branch of a split: on the churn test set that moved a
RandomForest's probabilities by up to 0.024 and a HistGradientBoosting's by 0.14. So a
``Pipeline`` is exported as two graphs joined into one: the preprocessing steps with float64
inputs (computing what scikit-learn computes), a ``Cast`` to float32, then the final
estimator on float32 features (what scikit-learn's trees see). Measured on the churn test set
(1,400 rows): labels agree 100 %, max |Δp| ≤ 2e-7 for logistic regression, random forest and
histogram gradient boosting (``tests/unit/test_onnx_export.py``).

Strings stay strings (``tensor(string)``): the OneHotEncoder runs inside the graph, so a
client never needs to know the encoding. Probabilities come out as a plain ``(n, classes)``
tensor (no ZipMap), which every runtime and our server handle without a dictionary per row.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pandas as pd

from course_pkg.onnx_export.parity import PROBA_ATOL, check_parity

# Opset pin: skl2onnx 1.20 is tested up to opset 22 (``get_latest_tested_opset_version``) and
# warns above it; onnxruntime 1.32 loads up to 28 (``runtime_max_opset`` probes it). We pin
# 21, one below the converter's tested maximum, because a model is only as portable as the
# oldest runtime that must load it (mobile, Java and JS builds trail the Python wheel).
# ai.onnx.ml 3 is the newest version of the tree and linear-classifier ops; skl2onnx stamps
# the lowest version the graph needs, never more than this.
TARGET_OPSET: dict[str, int] = {"": 21, "ai.onnx.ml": 3}

_PATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def _integer_missing_flags() -> Iterator[None]:
    """Work around skl2onnx 1.20 + scikit-learn 1.9 for HistGradientBoosting.

    scikit-learn 1.9 stores ``missing_go_to_left`` as numpy ``uint8``; skl2onnx passes those
    scalars straight into an ONNX attribute list, and ``onnx.helper.make_attribute`` rejects
    the mix of Python ints and numpy scalars ("Unable to create node 'TreeEnsembleClassifier'").
    Casting the flag to ``int`` is the whole fix. The wrapper is installed only while we
    convert (under a lock), and ``test_hgb_workaround_still_needed`` fails once an upstream
    release fixes it, so we know when to delete this.
    """
    import skl2onnx.common.tree_ensemble as tree_ensemble

    original = tree_ensemble.add_node

    def add_node(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kwargs: Any) -> Any:
        flag = int(nodes_missing_value_tracks_true)
        return original(*args, nodes_missing_value_tracks_true=flag, **kwargs)

    with _PATCH_LOCK:
        tree_ensemble.add_node = add_node
        try:
            yield
        finally:
            tree_ensemble.add_node = original


def _initial_types(frame: pd.DataFrame, number_type: Any) -> list[tuple[str, Any]]:
    """One ONNX input per column: strings stay strings, numbers get ``number_type``."""
    from skl2onnx.common.data_types import StringTensorType

    types: list[tuple[str, Any]] = []
    for column, dtype in frame.dtypes.items():
        if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            types.append((str(column), number_type([None, 1])))
        else:
            types.append((str(column), StringTensorType([None, 1])))
    return types


def _split_pipeline(pipeline: Any) -> tuple[Any, Any] | None:
    from sklearn.pipeline import Pipeline

    if isinstance(pipeline, Pipeline) and len(pipeline.steps) > 1:
        return pipeline[:-1], pipeline[-1]
    return None


def _convert_split(
    preprocess: Any, estimator: Any, frame: pd.DataFrame, opset: dict[str, int]
) -> Any:
    """preprocess (float64 in) → Cast(float32) → estimator, as one graph."""
    from onnx import TensorProto, compose, helper
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    front = to_onnx(
        preprocess, initial_types=_initial_types(frame, DoubleTensorType), target_opset=opset
    )
    if len(front.graph.output) != 1:
        raise ValueError("the preprocessing steps must produce a single feature matrix")
    width = preprocess.transform(frame.head(1)).shape[1]
    produced = front.graph.output[0].name
    front.graph.node.append(
        helper.make_node("Cast", [produced], ["features_float32"], to=TensorProto.FLOAT)
    )
    del front.graph.output[:]
    front.graph.output.append(
        helper.make_tensor_value_info("features_float32", TensorProto.FLOAT, [None, width])
    )
    back = to_onnx(
        estimator,
        initial_types=[("features", FloatTensorType([None, width]))],
        target_opset=opset,
        options={"zipmap": False},
    )
    outputs = [output.name for output in back.graph.output]
    # Align the two halves' import lists (skl2onnx may list a domain twice, or only in one
    # half) so merge_models accepts them; the merged model gets the normalised union.
    _normalise_opsets(front, extra=back)
    _normalise_opsets(back, extra=front)
    merged = compose.merge_models(
        front, back, io_map=[("features_float32", "features")], prefix2="model_"
    )
    for node in merged.graph.node:  # give the outputs back their plain names
        for index, name in enumerate(node.output):
            if name.startswith("model_") and name[len("model_") :] in outputs:
                node.output[index] = name[len("model_") :]
    for output in merged.graph.output:
        output.name = output.name.removeprefix("model_")
    merged.producer_name, merged.producer_version = back.producer_name, back.producer_version
    return merged


def _normalise_opsets(model: Any, extra: Any | None = None) -> None:
    """One import per domain (the highest version), sorted by domain.

    skl2onnx collects imports in a set, so their order follows string hashing and changes
    between processes; sorting makes the same pipeline give the same bytes every time.
    """
    versions: dict[str, int] = {}
    for source in (model, extra) if extra is not None else (model,):
        for opset in source.opset_import:
            versions[opset.domain] = max(versions.get(opset.domain, 0), opset.version)
    del model.opset_import[:]
    for domain in sorted(versions):
        entry = model.opset_import.add()
        entry.domain, entry.version = domain, versions[domain]


def label_and_check(model: Any, metadata: dict[str, str] | None) -> None:
    """Write ``metadata`` into ``metadata_props`` (sorted: stable bytes), then run the full
    ``onnx.checker`` — the last step of every export, sklearn or torch."""
    import onnx

    for key, value in sorted((metadata or {}).items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(model, full_check=True)


def export_sklearn(
    pipeline: Any,
    sample_frame: pd.DataFrame,
    *,
    target_opset: dict[str, int] | None = None,
    metadata: dict[str, str] | None = None,
    parity_frame: pd.DataFrame | None = None,
    proba_atol: float = PROBA_ATOL,
    verify: bool = True,
    tensor_input: str | None = None,
) -> Any:
    """The fitted ``pipeline`` as a checked ``onnx.ModelProto``.

    ``tensor_input`` names a single float32 ``(n, columns)`` input instead of one input per
    column — for models whose features are one matrix (image pixels).

    ``sample_frame`` fixes the inputs (one per column, in its order and dtypes).
    ``metadata`` goes into ``metadata_props`` (model name, version, source manifest hash...).
    With ``verify`` (the default) the result is run with onnxruntime on ``parity_frame``
    (default: ``sample_frame``) and ``ParityError`` is raised unless every label agrees and
    every probability is within ``proba_atol`` — an export that is not the same model fails
    here, not in production.
    """
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    if len(sample_frame) == 0:
        raise ValueError("sample_frame is empty: pass at least one row with every input column")
    opset = dict(target_opset or TARGET_OPSET)
    with _integer_missing_flags():
        parts = _split_pipeline(pipeline)
        if tensor_input is not None:
            width = sample_frame.shape[1]
            model = to_onnx(
                pipeline,
                initial_types=[(tensor_input, FloatTensorType([None, width]))],
                target_opset=opset,
                options={"zipmap": False},
            )
        elif parts is not None:
            model = _convert_split(*parts, sample_frame, opset)
        else:
            model = to_onnx(
                pipeline,
                initial_types=_initial_types(sample_frame, FloatTensorType),
                target_opset=opset,
                options={"zipmap": False},
            )
    _normalise_opsets(model)
    label_and_check(model, metadata)
    if verify:
        frame = sample_frame if parity_frame is None else parity_frame
        check_parity(pipeline, model, frame, proba_atol=proba_atol).raise_if_failed()
    return model
