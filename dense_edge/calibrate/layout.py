"""The two concatenation layouts of a dense block, read from and rewritten in an ONNX graph.

``torchvision``: every Concat joins the block's feature maps themselves, so a map feeds every later
Concat of its block. ``chained``: each Concat joins the previous Concat's output and one new map,
``c_l = Concat(c_{l-1}, x_l)``, so every tensor feeds exactly one Concat. Both compute the same
values (:mod:`dense_edge.models.densenet` exports either).

The rewrite works on float and on Q/DQ graphs: a Concat input that arrives through
``QuantizeLinear -> DequantizeLinear`` is followed to the tensor under it, which is sound for
our writers because one concatenation group has one scale (the rewritten Concats read the same
int8 values). It lets the traffic estimate price the layout a model was *not* exported with.
"""

from __future__ import annotations

import copy
from collections import Counter

import onnx

from dense_edge.calibrate.graph import Graph

LAYOUTS = ("chained", "torchvision")


def _value(g: Graph, t: str) -> str:
    """The tensor under ``t`` when ``t`` is a DequantizeLinear of a QuantizeLinear, else ``t``."""
    dq = g.producer.get(t)
    if dq is None or dq.op_type != "DequantizeLinear":
        return t
    q = g.producer.get(dq.input[0])
    if q is None or q.op_type != "QuantizeLinear" or q.input[0] in g.initializers:
        return t
    return str(q.input[0])


def _leaves(g: Graph, t: str) -> list[str]:
    """The Concat inputs (as the Concats read them) that a (nested) Concat is made of."""
    node = g.producer.get(_value(g, t))
    if node is None or node.op_type != "Concat":
        return [t]
    out: list[str] = []
    for i in node.input:
        out.extend(_leaves(g, i))
    return out


def concat_fan_out(model: onnx.ModelProto) -> Counter[str]:
    """Tensor -> number of Concats that read it (through Q/DQ)."""
    g = Graph(model)
    return Counter(
        _value(g, i) for n in model.graph.node if n.op_type == "Concat" for i in n.input if i
    )


def detect(model: onnx.ModelProto) -> str | None:
    """``chained``, ``torchvision``, or None when the graph has no Concat joining three maps."""
    g = Graph(model)
    concats = [n for n in model.graph.node if n.op_type == "Concat"]
    if not any(len(_leaves(g, n.output[0])) > 2 for n in concats):
        return None
    return "chained" if max(concat_fan_out(model).values()) <= 1 else "torchvision"


def relayout(model: onnx.ModelProto, layout: str) -> onnx.ModelProto:
    """A copy of ``model`` with its dense blocks' Concats written in ``layout``."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    model = copy.deepcopy(model)
    g = Graph(model)
    concats = [n for n in model.graph.node if n.op_type == "Concat"]
    leaves = {n.output[0]: _leaves(g, n.output[0]) for n in concats}
    if layout == "torchvision":
        for n in concats:
            del n.input[:]
            n.input.extend(leaves[n.output[0]])
    else:
        values = {o: [_value(g, t) for t in ls] for o, ls in leaves.items()}
        for n in concats:
            mine = values[n.output[0]]
            prefix = max(
                (
                    o
                    for o, vs in values.items()
                    if o != n.output[0] and len(vs) < len(mine) and mine[: len(vs)] == vs
                ),
                key=lambda o: len(values[o]),
                default=None,
            )
            if prefix is None:
                continue
            rest = leaves[n.output[0]][len(values[prefix]) :]
            del n.input[:]
            n.input.extend([_read_as_concat_input(g, prefix), *rest])
    _drop_dead(model)
    _topological(model)
    return model


def _read_as_concat_input(g: Graph, tensor: str) -> str:
    """How a Concat should read ``tensor``: through its existing DQ'd copy when it has one."""
    for q in g.consumers.get(tensor, []):
        if q.op_type != "QuantizeLinear":
            continue
        for dq in g.consumers.get(q.output[0], []):
            if dq.op_type == "DequantizeLinear":
                return str(dq.output[0])
    return tensor


def _drop_dead(model: onnx.ModelProto) -> None:
    outputs = {o.name for o in model.graph.output}
    while True:
        used = {i for n in model.graph.node for i in n.input} | outputs
        dead = [n for n in model.graph.node if not any(o in used for o in n.output)]
        if not dead:
            return
        keep = [n for n in model.graph.node if all(n is not d for d in dead)]
        del model.graph.node[:]
        model.graph.node.extend(keep)


def _topological(model: onnx.ModelProto) -> None:
    g = model.graph
    ready = {i.name for i in g.input} | {i.name for i in g.initializer} | {""}
    pending = list(g.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        rest = []
        for n in pending:
            if all(i in ready for i in n.input):
                ordered.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise ValueError("the rewritten graph has a cycle")
        pending = rest
    del g.node[:]
    g.node.extend(ordered)
