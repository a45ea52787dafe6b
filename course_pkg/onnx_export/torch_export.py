"""torch.nn.Module → ONNX with ``torch.onnx.export`` (the torch.export-based "dynamo" exporter).

torch 2.9+ made the dynamo exporter the default and deprecated the TorchScript-based one; the
dynamo exporter needs ``onnxscript`` (pinned in the lock). The batch dimension is exported as
dynamic, so one graph serves one row or 64k.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from course_pkg.onnx_export.parity import PROBA_ATOL, check_torch_parity
from course_pkg.onnx_export.sklearn_export import TARGET_OPSET, label_and_check


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """torch 2.13's exporter logs a line per missing optional library (torchvision) and its
    pytree code emits a FutureWarning about its own API; neither concerns the user."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
            yield
    finally:
        logger.setLevel(level)


def export_torch(
    module: Any,
    example: np.ndarray,
    *,
    input_name: str = "input",
    output_name: str = "probabilities",
    opset: int = TARGET_OPSET[""],
    metadata: dict[str, str] | None = None,
    verify: bool = True,
    parity_inputs: np.ndarray | None = None,
    proba_atol: float = PROBA_ATOL,
) -> Any:
    """Export ``module`` (in eval mode) for float32 inputs shaped like ``example``.

    With ``verify`` the export is run with onnxruntime on ``parity_inputs`` (default
    ``example``) and compared with the module (``check_torch_parity``); ``ParityError`` if
    they disagree.
    """
    import torch

    module = module.eval()
    sample = torch.from_numpy(np.asarray(example, dtype=np.float32))
    forward_arg = _first_forward_argument(module)
    with _quiet_exporter():
        program = torch.onnx.export(
            module,
            (sample,),
            dynamo=True,
            input_names=[input_name],
            output_names=[output_name],
            dynamic_shapes={forward_arg: {0: torch.export.Dim("batch")}},
            opset_version=opset,
            verbose=False,
        )
    if program is None:  # only when exporting to a file path, which we do not do
        raise RuntimeError("torch.onnx.export returned no program")
    model = program.model_proto
    label_and_check(model, metadata)
    if verify:
        rows = example if parity_inputs is None else parity_inputs
        check_torch_parity(module, model, rows, proba_atol=proba_atol).raise_if_failed()
    return model


def _first_forward_argument(module: Any) -> str:
    import inspect

    parameters = list(inspect.signature(module.forward).parameters)
    if not parameters:
        raise TypeError(f"{type(module).__name__}.forward takes no input to export")
    return parameters[0]
