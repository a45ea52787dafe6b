"""Export models to ONNX, prove the export matches, and run it with onnxruntime.

    export_sklearn(pipeline, frame)        sklearn pipeline → checked, parity-gated ModelProto
    export_torch(module, example)          torch.nn.Module → ModelProto via torch.onnx (dynamo)
    check_parity / check_torch_parity      label agreement + max |Δp| as a ParityReport
    OnnxPredictor                          tuned onnxruntime session; DataFrame or records in
    describe(model)                        inputs, outputs, opsets, op counts, size
    runtime_max_opset()                    newest opset the installed onnxruntime loads

The codec only: nothing here imports artifacts (which uses it for the ``onnx`` format), except
``OnnxPredictor.from_package``, a lazy alias of ``artifacts.load_onnx_package`` kept for the
notebooks. The package-to-package workflow is ``course_pkg.artifacts.export_package``.

Why the numbers enter as float64 (and trees still run in float32): see ``sklearn_export``.
"""

from course_pkg.onnx_export.inspect import OnnxSummary, describe, runtime_max_opset
from course_pkg.onnx_export.parity import (
    PROBA_ATOL,
    ParityError,
    ParityReport,
    check_parity,
    check_torch_parity,
)
from course_pkg.onnx_export.predictor import InputError, OnnxPredictor, onnx_feeds
from course_pkg.onnx_export.sklearn_export import TARGET_OPSET, export_sklearn
from course_pkg.onnx_export.torch_export import export_torch

__all__ = [
    "PROBA_ATOL",
    "TARGET_OPSET",
    "InputError",
    "OnnxPredictor",
    "OnnxSummary",
    "ParityError",
    "ParityReport",
    "check_parity",
    "check_torch_parity",
    "describe",
    "export_sklearn",
    "export_torch",
    "onnx_feeds",
    "runtime_max_opset",
]
