"""What is inside an ONNX file: inputs, outputs, opsets, node counts by op type, size."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class OnnxSummary:
    inputs: list[tuple[str, str, list[Any]]]  # (name, element type, shape; None = any)
    outputs: list[tuple[str, str, list[Any]]]
    opsets: dict[str, int]  # domain ('' is the default ai.onnx) → version
    ir_version: int
    producer: str
    node_counts: dict[str, int]  # op type (domain-qualified outside ai.onnx) → count
    size_bytes: int
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def nodes(self) -> int:
        return sum(self.node_counts.values())

    def as_text(self) -> str:
        lines = [
            f"ONNX IR {self.ir_version}, produced by {self.producer}, {self.size_bytes:,} bytes",
            "opsets: " + ", ".join(f"{d or 'ai.onnx'}={v}" for d, v in self.opsets.items()),
            "inputs:",
            *(f"  {n}: {t} {s}" for n, t, s in self.inputs),
            "outputs:",
            *(f"  {n}: {t} {s}" for n, t, s in self.outputs),
            f"{self.nodes} nodes: "
            + ", ".join(f"{op}×{count}" for op, count in self.node_counts.items()),
        ]
        if self.metadata:
            lines.append("metadata: " + ", ".join(f"{k}={v}" for k, v in self.metadata.items()))
        return "\n".join(lines)


def _value_info(value: Any) -> tuple[str, str, list[Any]]:
    from onnx import TensorProto

    tensor = value.type.tensor_type
    shape = [
        dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or None)
        for dim in tensor.shape.dim
    ]
    return value.name, TensorProto.DataType.Name(tensor.elem_type).lower(), shape


def describe(model: Any) -> OnnxSummary:
    """Summarise a ModelProto, serialized bytes or a path to a .onnx file."""
    import onnx

    if isinstance(model, (str, Path)):
        raw = Path(model).read_bytes()
        model = onnx.load_from_string(raw)
    elif isinstance(model, bytes):
        raw, model = model, onnx.load_from_string(model)
    else:
        raw = model.SerializeToString()
    counts = Counter(
        f"{node.domain}.{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type
        for node in model.graph.node
    )
    return OnnxSummary(
        inputs=[_value_info(v) for v in model.graph.input],
        outputs=[_value_info(v) for v in model.graph.output],
        opsets={o.domain: o.version for o in model.opset_import},
        ir_version=model.ir_version,
        producer=f"{model.producer_name} {model.producer_version}".strip(),
        node_counts=dict(counts.most_common()),
        size_bytes=len(raw),
        metadata={p.key: p.value for p in model.metadata_props},
    )


def runtime_max_opset(domain: str = "") -> int:
    """The newest opset of ``domain`` the installed onnxruntime loads, found by trying.

    A one-node (Identity) model per opset, newest first; the first one onnxruntime accepts
    wins. Asking the runtime beats reading release notes: it is the answer for *this* build.
    """
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    value = helper.make_tensor_value_info
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph(
        [node], "probe", [value("x", TensorProto.FLOAT, [1])], [value("y", TensorProto.FLOAT, [1])]
    )
    for version in range(onnx.defs.onnx_opset_version() + 2, 6, -1):
        imports = [helper.make_opsetid("", version)]
        if domain:
            imports.append(helper.make_opsetid(domain, version))
        model = helper.make_model(graph, opset_imports=imports, ir_version=onnx.IR_VERSION)
        try:
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception:  # onnxruntime raises its own Fail/InvalidGraph types
            continue
        return version
    raise RuntimeError("onnxruntime loaded no opset ≥ 7")
