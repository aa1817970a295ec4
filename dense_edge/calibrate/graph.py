"""Reading an ONNX graph for quantisation: who produces and consumes each tensor, which tensors
to observe, and which are concatenations of others."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import onnx
from onnx import numpy_helper

WEIGHTED = ("Conv", "Gemm")
# Ops whose outputs are observed during calibration (Concat outputs are derived from inputs).
OBSERVED_OUTPUTS = (
    "Conv",
    "Gemm",
    "Relu",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Flatten",
)


@dataclass
class Graph:
    model: onnx.ModelProto
    producer: dict[str, onnx.NodeProto] = field(default_factory=dict)
    consumers: dict[str, list[onnx.NodeProto]] = field(default_factory=lambda: defaultdict(list))
    initializers: dict[str, onnx.TensorProto] = field(default_factory=dict)

    def __post_init__(self) -> None:
        g = self.model.graph
        self.initializers = {i.name: i for i in g.initializer}
        for node in g.node:
            for out in node.output:
                self.producer[out] = node
            for inp in node.input:
                if inp:
                    self.consumers[inp].append(node)

    @property
    def inputs(self) -> list[str]:
        return [i.name for i in self.model.graph.input if i.name not in self.initializers]

    @property
    def outputs(self) -> list[str]:
        return [o.name for o in self.model.graph.output]

    def op(self, tensor: str) -> str:
        node = self.producer.get(tensor)
        return node.op_type if node is not None else ("input" if tensor in self.inputs else "const")

    def weight(self, name: str) -> onnx.TensorProto | None:
        return self.initializers.get(name)

    def array(self, name: str):  # type: ignore[no-untyped-def]
        return numpy_helper.to_array(self.initializers[name])

    def weighted_nodes(self) -> list[onnx.NodeProto]:
        return [n for n in self.model.graph.node if n.op_type in WEIGHTED]

    def concat_leaves(self, tensor: str) -> list[str]:
        """The non-concat tensors a (possibly nested) concatenation is made of."""
        node = self.producer.get(tensor)
        if node is None or node.op_type != "Concat":
            return [tensor]
        out: list[str] = []
        for inp in node.input:
            out.extend(self.concat_leaves(inp))
        return out

    def observed_tensors(self) -> list[str]:
        """Activations whose statistics calibration collects.

        Outputs of convolutions that only feed a ReLU are skipped (every profile quantises after
        the ReLU), and concatenations are derived from their inputs.
        """
        seen: list[str] = list(self.inputs)
        for node in self.model.graph.node:
            if node.op_type not in OBSERVED_OUTPUTS:
                continue
            out = node.output[0]
            users = self.consumers.get(out, [])
            if node.op_type == "Conv" and users and all(u.op_type == "Relu" for u in users):
                continue
            seen.append(out)
        return seen


def node_name(node: onnx.NodeProto) -> str:
    return node.name or f"{node.op_type}:{node.output[0]}"


def concat_groups(graph: Graph) -> dict[str, int]:
    """Tensor -> concatenation group: the union of every tensor joined by Concats.

    In a DenseNet each dense block is one group: the block input, every layer's new features and
    every Concat output. Sharing one scale per group lets each producer write int8 straight into
    the concatenated buffer.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for node in graph.model.graph.node:
        if node.op_type != "Concat":
            continue
        root = find(node.output[0])
        for inp in node.input:
            if inp and inp not in graph.initializers:
                parent[find(inp)] = root
    roots: dict[str, int] = {}
    return {t: roots.setdefault(find(t), len(roots)) for t in list(parent)}


def gemm_outputs(graph: Graph, node: onnx.NodeProto) -> int | None:
    """Number of output features of a Gemm (None when its weight is not a constant)."""
    w = graph.weight(node.input[1]) if len(node.input) > 1 else None
    if w is None or len(w.dims) != 2:
        return None
    trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
    return int(w.dims[0] if trans_b else w.dims[1])
