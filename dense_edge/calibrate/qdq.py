"""Writing a Q/DQ (explicitly quantised) ONNX model from a float model, ranges and rules."""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from dense_edge.calibrate.collect import Statistics
from dense_edge.calibrate.graph import WEIGHTED, Graph, concat_groups, gemm_outputs, node_name
from dense_edge.calibrate.methods import MethodOptions, Range, asymmetric_range, symmetric_range
from dense_edge.calibrate.rules import Rules
from dense_edge.errors import UserError
from dense_edge.export.fp16 import float_parts_to_fp16

MIN_QDQ_OPSET = 13
MIN_FP16_QDQ_OPSET = 19  # QuantizeLinear/DequantizeLinear with float16 scales
POOLS = ("AveragePool", "MaxPool")


@dataclass
class QuantPlan:
    """What gets quantised, before any node is written: also the calibration record."""

    activations: dict[str, Range] = field(default_factory=dict)  # quantised tensor -> range
    source: dict[str, str] = field(default_factory=dict)  # quantised tensor -> stats tensor
    rewired: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    weighted: list[str] = field(default_factory=list)  # weighted nodes with int8 weights
    kept_float: list[str] = field(default_factory=list)  # weighted nodes left in float
    absorbed_relus: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        return {
            "quantized_tensors": len(self.activations),
            "quantized_layers": len(self.weighted),
            "float_layers": list(self.kept_float),
            "absorbed_relus": len(self.absorbed_relus),
        }


def plan(
    graph: Graph,
    stats: Statistics,
    rules: Rules,
    opts: MethodOptions,
    exclude: set[str] | frozenset[str] = frozenset(),
) -> QuantPlan:
    """Which tensors get Q/DQ, with which range, and which nodes read the dequantised copy."""
    p = QuantPlan()
    for node in graph.weighted_nodes():
        float_layer = node_name(node) in exclude or _tiny_gemm(graph, node, rules)
        (p.kept_float if float_layer else p.weighted).append(node_name(node))
    if rules.quantize_outputs:
        readers = _qlinear_readers(graph, rules, exclude)
    else:
        readers = _explicit_readers(graph, rules, set(p.weighted))
    groups = concat_groups(graph) if rules.concat == "int8" else {}
    group_ranges = _group_ranges(graph, stats, groups, opts) if groups else {}
    outputs = set(graph.outputs)

    for tensor, users in readers.items():
        if not users:
            continue
        if rules.absorb_relu and all(n.op_type == "Relu" for n in users):
            continue  # quantised after the ReLU, which is absorbed
        relu = graph.producer.get(tensor)
        if (
            rules.absorb_relu
            and relu is not None
            and relu.op_type == "Relu"
            and len(users) == len(graph.consumers.get(tensor, []))
            and len(graph.consumers.get(relu.input[0], [])) == 1
            and relu.input[0] not in outputs
            and tensor not in outputs
        ):
            p.absorbed_relus.append(node_name(relu))
        # The ReLU's output holds the statistics, also when the ReLU is absorbed.
        st = stats.get(graph, tensor)
        if tensor in groups:
            rng = group_ranges[groups[tensor]]
        elif tensor in graph.inputs:
            # The model input's range is fixed by preprocessing: clipping it never helps.
            exact = MethodOptions("minmax")
            rng = symmetric_range(st, exact) if rules.symmetric else asymmetric_range(st, exact)
        elif rules.symmetric:
            rng = symmetric_range(st, opts)
        else:
            rng = asymmetric_range(st, opts)
        p.activations[tensor] = rng
        p.source[tensor] = tensor
        p.rewired[tensor] = [node_name(n) for n in users]
    return p


def _tiny_gemm(graph: Graph, node: onnx.NodeProto, rules: Rules) -> bool:
    if node.op_type != "Gemm" or not rules.min_gemm_outputs:
        return False
    n = gemm_outputs(graph, node)
    return n is not None and n < rules.min_gemm_outputs


def _explicit_readers(
    graph: Graph, rules: Rules, quantized_layers: set[str]
) -> dict[str, list[onnx.NodeProto]]:
    """TensorRT-style explicit quantisation: tensor -> the nodes that read its DQ'd copy."""
    readers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    groups = concat_groups(graph)  # with float Concats, a pool feeding one stays float out

    def want(tensor: str, nodes: list[onnx.NodeProto]) -> None:
        if not tensor or tensor in graph.initializers:
            return
        have = readers[tensor]
        have += [n for n in nodes if all(n is not h for h in have)]

    for node in graph.model.graph.node:
        if node.op_type in WEIGHTED and node.op_type in rules.quantized_ops:
            if node_name(node) in quantized_layers:
                want(node.input[0], [node])
        elif rules.pools and node.op_type in POOLS:
            want(node.input[0], [node])
            if rules.concat == "int8" or node.output[0] not in groups:
                want(node.output[0], graph.consumers.get(node.output[0], []))
        elif rules.global_pool_input and node.op_type == "GlobalAveragePool":
            want(node.input[0], [node])
    if rules.concat == "int8":
        # Every reader of a concatenated tensor takes the DQ'd copy: no float copy stays alive.
        for tensor in groups:
            want(tensor, graph.consumers.get(tensor, []))
    outputs = set(graph.outputs)
    return {t: users for t, users in readers.items() if t not in outputs}


def _qlinear_readers(
    graph: Graph, rules: Rules, exclude: set[str] | frozenset[str]
) -> dict[str, list[onnx.NodeProto]]:
    """ONNX Runtime QLinear units: inputs and outputs of every op with a quantised kernel."""
    outputs = set(graph.outputs)
    candidates: list[str] = []
    for node in graph.model.graph.node:
        if node_name(node) in exclude or node.op_type not in rules.quantized_ops:
            continue
        data_inputs = [node.input[0]] if node.op_type in WEIGHTED else list(node.input)
        candidates += [t for t in data_inputs if t and t not in graph.initializers]
        candidates += [t for t in node.output if t not in outputs]
    return {
        t: [n for n in graph.consumers.get(t, []) if node_name(n) not in exclude]
        for t in dict.fromkeys(candidates)
    }


def _group_ranges(
    graph: Graph, stats: Statistics, groups: dict[str, int], opts: MethodOptions
) -> dict[int, Range]:
    """One symmetric range per concatenation group: the widest of its members' own ranges.

    Each member (a block input, a layer's new features) is calibrated on its own statistics
    with the chosen method, and the group takes the widest range, as ModelOpt's concat
    elimination does. (A percentile of the *merged* histogram instead clips the member whose
    values are largest, usually the block input: one more test image changed on digits.)
    """
    members: dict[int, list[str]] = defaultdict(list)
    for t, gid in groups.items():
        if graph.op(t) != "Concat":
            members[gid].append(t)
    out: dict[int, Range] = {}
    for gid, ts in members.items():
        ranges = [symmetric_range(stats.get(graph, t), opts) for t in sorted(ts)]
        out[gid] = max(ranges, key=lambda r: r.amax)
    return out


# -- writing the model ----------------------------------------------------------------------------


def quantize_model(
    model: onnx.ModelProto,
    stats: Statistics,
    rules: Rules,
    opts: MethodOptions,
    exclude: set[str] | frozenset[str] = frozenset(),
) -> tuple[onnx.ModelProto, QuantPlan]:
    """A Q/DQ copy of ``model`` following ``rules``; ``exclude`` names weighted nodes kept float."""
    model = copy.deepcopy(model)
    _ensure_opset(model, rules)
    graph = Graph(model)
    qp = plan(graph, stats, rules, opts, exclude)
    g = model.graph
    by_name = {node_name(n): n for n in g.node}

    # ReLUs absorbed into a uint8 zero point: their input becomes the quantised tensor.
    absorbed_input: dict[str, str] = {}
    for relu_name in qp.absorbed_relus:
        relu = by_name[relu_name]
        absorbed_input[relu.output[0]] = relu.input[0]

    tensor_of_dq: dict[str, str] = {}
    new_inits: list[TensorProto] = []
    pre_nodes: list[onnx.NodeProto] = []  # weight DQs and graph-input Q/DQs
    after: dict[str, list[onnx.NodeProto]] = defaultdict(list)  # producer output -> Q/DQ nodes

    for tensor, rng in qp.activations.items():
        scale, zero = _activation_params(rng, rules)
        base = _safe(tensor)
        s_name, z_name = f"{base}_scale", f"{base}_zero_point"
        new_inits.append(numpy_helper.from_array(np.array(scale, np.float32), s_name))
        new_inits.append(numpy_helper.from_array(zero, z_name))
        src = absorbed_input.get(tensor, tensor)
        q_out, dq_out = f"{base}_quantized", f"{base}_dequantized"
        tensor_of_dq[dq_out] = tensor
        qn = helper.make_node("QuantizeLinear", [src, s_name, z_name], [q_out], name=f"{base}_Q")
        dqn = helper.make_node(
            "DequantizeLinear", [q_out, s_name, z_name], [dq_out], name=f"{base}_DQ"
        )
        producer = graph.producer.get(src)
        (after[src] if producer is not None else pre_nodes).extend([qn, dqn])
        readers = set(qp.rewired[tensor])
        for node in g.node:
            if node_name(node) in readers:
                for i, inp in enumerate(node.input):
                    if inp == tensor:
                        node.input[i] = dq_out

    act_scales = {t: _activation_params(r, rules)[0] for t, r in qp.activations.items()}
    weighted = set(qp.weighted)
    for node in graph.weighted_nodes():
        if node_name(node) not in weighted or len(node.input) < 2:
            continue
        w_name = node.input[1]
        if w_name not in graph.initializers:
            continue
        w = graph.array(w_name).astype(np.float32)
        axis = _weight_axis(node)
        wq, w_scale = _quantize_weights(w, axis, rules.float_dtype)
        node.input[1] = _dequantized_constant(
            _safe(f"{node_name(node)}_weight"), wq, w_scale, axis, new_inits, pre_nodes
        )
        if rules.bias == "int32" and len(node.input) > 2 and node.input[2] in graph.initializers:
            x_tensor = tensor_of_dq.get(node.input[0])
            x_scale = act_scales.get(x_tensor) if x_tensor else None
            if x_scale is not None:
                b = graph.array(node.input[2]).astype(np.float64)
                b_scale = (x_scale * w_scale.astype(np.float64)).astype(np.float32)
                bq = np.clip(np.round(b / b_scale), -(2**31), 2**31 - 1).astype(np.int32)
                node.input[2] = _dequantized_constant(
                    _safe(f"{node_name(node)}_bias"), bq, b_scale, 0, new_inits, pre_nodes
                )

    # Rebuild the node list in topological order, dropping absorbed ReLUs.
    dropped = set(qp.absorbed_relus)
    nodes: list[onnx.NodeProto] = list(pre_nodes)
    for node in g.node:
        if node_name(node) in dropped:
            continue
        nodes.append(node)
        for out in node.output:
            nodes.extend(after.get(out, []))
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(new_inits)
    _drop_unused_initializers(model)
    if rules.float_dtype == "fp16":
        float_parts_to_fp16(model)
    return model, qp


def _dequantized_constant(
    base: str,
    values: np.ndarray,
    scale: np.ndarray,
    axis: int,
    inits: list[TensorProto],
    nodes: list[onnx.NodeProto],
) -> str:
    """An integer initializer behind a per-channel DequantizeLinear (zero points 0)."""
    kind = "int8" if values.dtype == np.int8 else "int32"
    inits += [
        numpy_helper.from_array(values, f"{base}_{kind}"),
        numpy_helper.from_array(scale, f"{base}_scale"),
        numpy_helper.from_array(np.zeros(scale.shape, values.dtype), f"{base}_zero_point"),
    ]
    out = f"{base}_dequantized"
    nodes.append(
        helper.make_node(
            "DequantizeLinear",
            [f"{base}_{kind}", f"{base}_scale", f"{base}_zero_point"],
            [out],
            name=f"{base}_DQ",
            axis=axis,
        )
    )
    return out


def _activation_params(rng: Range, rules: Rules) -> tuple[float, np.ndarray]:
    if rules.symmetric:
        s = representable(max(rng.amax, 1e-12) / 127.0, rules.float_dtype)
        return float(s), np.array(0, np.int8)
    lo, hi = min(rng.lo, 0.0), max(rng.hi, 0.0)
    scale = max(hi - lo, 1e-12) / 255.0
    zero = int(np.clip(np.round(-lo / scale), 0, 255))
    return float(scale), np.array(zero, np.uint8)


def representable(scale: float | np.ndarray, float_dtype: str) -> np.ndarray:
    """``scale`` rounded *up* to a value the model's float type holds exactly (never to 0), so
    a float16 scale quantises exactly what it dequantises and nothing overflows 127."""
    s = np.asarray(scale, np.float32)
    if float_dtype != "fp16":
        return s
    tiny = np.finfo(np.float16).smallest_subnormal
    h = np.maximum(s, np.float32(tiny)).astype(np.float16)
    low = h.astype(np.float32) < s
    h = np.where(low, np.nextafter(h, np.float16(np.inf)), h)
    out: np.ndarray = h.astype(np.float32)
    return out


def _weight_axis(node: onnx.NodeProto) -> int:
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return 0


def _quantize_weights(
    w: np.ndarray, axis: int, float_dtype: str = "fp32"
) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel int8 along ``axis``: returns ``(int8 weights, float32 scales)``."""
    moved = np.moveaxis(w, axis, 0)
    amax = np.abs(moved.reshape(moved.shape[0], -1)).max(axis=1)
    scale = representable(np.where(amax > 0, amax / 127.0, 1.0), float_dtype)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def _ensure_opset(model: onnx.ModelProto, rules: Rules) -> None:
    need = MIN_FP16_QDQ_OPSET if rules.float_dtype == "fp16" else MIN_QDQ_OPSET
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx") and entry.version < need:
            what = "float16 Q/DQ scales need" if need > MIN_QDQ_OPSET else "per-channel Q/DQ needs"
            raise UserError(
                f"{what} opset {need}+, the model has {entry.version}",
                fix=f"export with export.opset >= {need}"
                + (" or set calibration.float_parts=fp32" if need > MIN_QDQ_OPSET else ""),
            )


def _drop_unused_initializers(model: onnx.ModelProto) -> None:
    used = {i for n in model.graph.node for i in n.input}
    keep = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)


_SAFE = str.maketrans({"/": "_", ":": "_", ".": "_", " ": "_"})


def _safe(name: str) -> str:
    return name.strip("/").translate(_SAFE)
