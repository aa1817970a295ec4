"""The Q/DQ checker: does a quantised model obey its profile's rules? (No TensorRT needed.)

Two doors: :func:`check` judges a model file (an ONNX file, or an OpenVINO IR), :func:`check_onnx`
a model in memory. ``dense-edge calibrate --check MODEL --profile P``, ``dense_edge.check``, the
calibrate stage and the API's quantiser (on their own output) and the device kit use them; each
lists every violation with the node it is on. Everything it judges of a Q/DQ model comes from
the profile's :class:`~dense_edge.calibrate.rules.Rules`, the same object the writer places
Q/DQ from; an OpenVINO IR is NNCF's layout, judged by NNCF's placement instead.

For ``tensorrt`` it accepts every layout TensorRT builds: int8 initializers or FP32/FP16 weights
behind Q/DQ, Q/DQ on Concat inputs and outputs, around pooling and anywhere else, FP16 float
parts and Cast nodes. It refuses what TensorRT rejects or what silently defeats int8: non-zero
zero points, uint8, per-tensor or wrong-axis weight scales, scales that are not positive finite
constants, a Q not followed by its DQ, int32 biases, and a Conv/Gemm quantised on one side only
(int8 weights with a float input, or the reverse). Concats that TensorRT must copy in float are
listed as notes. Weighted layers without quantisation are float layers, not violations: keeping
them is what accuracy-aware mode does on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from dense_edge import onnxfile, ovcore
from dense_edge.calibrate.graph import Graph, node_name
from dense_edge.calibrate.nncf_openvino import IR_SUFFIX
from dense_edge.calibrate.rules import Rules, profile_named, rules_for
from dense_edge.catalog import PROFILE_OPENVINO
from dense_edge.errors import UserError
from dense_edge.records import CheckRecord

INT8, UINT8, INT32 = TensorProto.INT8, TensorProto.UINT8, TensorProto.INT32
FLOATS = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16)


@dataclass(frozen=True)
class RuleViolation:
    rule: str
    node: str
    message: str


@dataclass
class CheckReport:
    profile: str
    model: str
    violations: list[RuleViolation] = field(default_factory=list)
    quantized_layers: list[str] = field(default_factory=list)
    float_layers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # accepted, but slower than it could be

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, rule: str, node: str, message: str) -> None:
        self.violations.append(RuleViolation(rule, node, message))

    def to_dict(self) -> CheckRecord:
        return {
            "profile": self.profile,
            "model": self.model,
            "ok": self.ok,
            "violations": [
                {"rule": v.rule, "node": v.node, "message": v.message} for v in self.violations
            ],
            "quantized_layers": len(self.quantized_layers),
            "float_layers": self.float_layers,
            "notes": self.notes,
        }


def check(path: str | Path, profile: str) -> CheckReport:
    """Check the model file at ``path`` against the profile called ``profile``.

    An OpenVINO IR (``.xml``) is NNCF's, checked as the ``openvino`` profile's whatever profile is
    named; an ONNX file named for ``openvino`` is read by OpenVINO and checked the same way.
    """
    path = Path(path)
    if not path.exists():
        raise UserError("model not found", path=path)
    if path.suffix == IR_SUFFIX or profile_named(profile) == PROFILE_OPENVINO:
        return _check_ir(path)
    return check_onnx(onnxfile.load(path), profile, str(path))


def check_onnx(model: onnx.ModelProto, profile: str | Rules, where: str = "model") -> CheckReport:
    """Check ``model``, in memory, against a Q/DQ profile's rules (a name, or the :class:`Rules`
    themselves).

    The layout options of a profile (tensorrt's ``concat``, ``float``) do not change what is
    accepted: the checker accepts every layout the runtime builds and refuses what it rejects or
    silently runs in float.
    """
    if isinstance(profile, Rules):
        rules = profile
    elif profile_named(profile) == PROFILE_OPENVINO:
        raise UserError(
            f"the {profile} profile checks a model file", fix="pass the path of the .xml"
        )
    else:
        rules = rules_for(profile)
    _refuse_cycle(model, where)
    report = CheckReport(rules.name, where)
    g = Graph(model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        report.add("opset", "model", f"opset {opset}: per-channel Q/DQ needs 13 or newer")

    qnodes = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    if not qnodes:
        report.add(
            "quantized", "model", "no QuantizeLinear/DequantizeLinear nodes: not a Q/DQ model"
        )
        return report
    for n in qnodes:
        _check_qdq_node(report, g, n, rules)
    for n in model.graph.node:
        if n.op_type == "QuantizeLinear":
            _check_pairing(report, g, n)
    for n in g.weighted_nodes():
        _check_weighted(report, g, n, rules)
    if rules.quantize_outputs:
        _check_units(report, g)
    else:
        _note_concats(report, g)
    return report


def _refuse_cycle(model: onnx.ModelProto, where: str) -> None:
    """An ONNX graph is acyclic (ONNX Runtime and OpenVINO refuse a cycle): no rule or traffic
    estimate means anything for one."""
    nodes = list(model.graph.node)
    producer = {out: i for i, n in enumerate(nodes) for out in n.output if out}
    needs = [{producer[x] for x in n.input if x in producer} for n in nodes]
    users: list[list[int]] = [[] for _ in nodes]
    for i, deps in enumerate(needs):
        for d in deps:
            users[d].append(i)
    waiting = [len(d) for d in needs]
    ready = [i for i, w in enumerate(waiting) if w == 0]
    done = 0
    while ready:
        i = ready.pop()
        done += 1
        for u in users[i]:
            waiting[u] -= 1
            if waiting[u] == 0:
                ready.append(u)
    if done < len(nodes):
        stuck = next(n for n, w in zip(nodes, waiting, strict=True) if w > 0)
        raise UserError(
            f"{where}: not a valid ONNX graph: node {stuck.name or stuck.op_type!r} is on or "
            "after a cycle (ONNX Runtime and OpenVINO refuse it)",
            fix="export the model again",
        )


def _const(g: Graph, name: str) -> np.ndarray | None:
    init = g.weight(name)
    if init is not None:
        return numpy_helper.to_array(init)
    node = g.producer.get(name)
    if node is not None and node.op_type == "Constant" and node.attribute:
        value = onnx.helper.get_attribute_value(node.attribute[0])
        if isinstance(value, onnx.TensorProto):
            return numpy_helper.to_array(value)
        if isinstance(value, (int, float, list)):
            return np.asarray(value)
    return None


def _constant_type(g: Graph, name: str) -> int | None:
    """The element type of a constant tensor (initializer or Constant node), else None."""
    init = g.weight(name)
    if init is not None:
        return int(init.data_type)
    node = g.producer.get(name)
    if node is not None and node.op_type == "Constant" and node.attribute:
        value = onnx.helper.get_attribute_value(node.attribute[0])
        if isinstance(value, onnx.TensorProto):
            return int(value.data_type)
        return TensorProto.FLOAT
    return None


def _zero_point_type(g: Graph, n: onnx.NodeProto) -> int | None:
    if len(n.input) < 3 or not n.input[2]:
        return UINT8  # ONNX default
    return _constant_type(g, n.input[2])


def _weight_source(g: Graph, n: onnx.NodeProto) -> tuple[str, int] | None:
    """For a Q/DQ on a constant: ``(constant name, its type)``; None for activations.

    Weights arrive either as integer initializers behind DequantizeLinear, or as float (fp32 or
    fp16) initializers behind QuantizeLinear -> DequantizeLinear (TensorRT quantises them at
    build time; ModelOpt writes this form).
    """
    src = n.input[0]
    if n.op_type == "DequantizeLinear":
        q = g.producer.get(src)
        if q is not None and q.op_type == "QuantizeLinear":
            src = q.input[0]
    kind = _constant_type(g, src)
    return (src, kind) if kind is not None else None


def _check_qdq_node(report: CheckReport, g: Graph, n: onnx.NodeProto, rules: Rules) -> None:
    name = node_name(n)
    weight = _weight_source(g, n)
    zp_type = _zero_point_type(g, n)
    zp = _const(g, n.input[2]) if len(n.input) > 2 and n.input[2] else np.array(0)
    scale = _const(g, n.input[1])
    if scale is None:
        report.add("scale", name, "scale is not a constant")
        return
    if np.any(scale <= 0) or not np.all(np.isfinite(scale)):
        report.add("scale", name, "scales must be finite and positive")
    if weight is not None:
        _, kind = weight
        if kind == INT32:
            if rules.bias != "int32":
                report.add("bias", name, f"quantised bias: {rules.name} expects float biases")
            return
        if kind not in (INT8, *FLOATS) or zp_type not in (INT8, None):
            report.add("weights", name, "weights must be int8 (or float behind Q/DQ to int8)")
        if zp is not None and np.any(zp != 0):
            report.add("weights", name, "weight zero points must be 0 (symmetric)")
        return
    # Activation Q/DQ.
    if scale.size != 1:
        report.add("per-tensor", name, "activations are quantised per tensor (one scale)")
    want = INT8 if rules.activation == "int8" else UINT8
    if zp_type != want:
        why = (
            f"activations must be int8 for {rules.name}"
            if want == INT8
            else "activations should be uint8: ONNX Runtime's x86 int8 kernels run u8s8 fastest"
        )
        report.add("dtype", name, why)
    if rules.symmetric and zp is not None and np.any(zp != 0):
        report.add("symmetric", name, "zero point must be 0 (symmetric)")


def _check_pairing(report: CheckReport, g: Graph, q: onnx.NodeProto) -> None:
    users = g.consumers.get(q.output[0], [])
    if not users or any(u.op_type != "DequantizeLinear" for u in users):
        report.add("pairing", node_name(q), "every QuantizeLinear must feed DequantizeLinear")
        return
    for dq in users:
        a, b = _const(g, dq.input[1]), _const(g, q.input[1])
        same_scale = dq.input[1] == q.input[1] or (
            a is not None and b is not None and np.array_equal(a, b)
        )
        if not same_scale:
            report.add("pairing", node_name(dq), "Q and DQ of one tensor must share the scale")


def _from_dq(g: Graph, tensor: str) -> onnx.NodeProto | None:
    node = g.producer.get(tensor)
    return node if node is not None and node.op_type == "DequantizeLinear" else None


def _check_weighted(report: CheckReport, g: Graph, n: onnx.NodeProto, rules: Rules) -> None:
    name = node_name(n)
    x_dq = _from_dq(g, n.input[0])
    w_dq = _from_dq(g, n.input[1]) if len(n.input) > 1 else None
    if x_dq is None and w_dq is None:
        report.float_layers.append(name)
        return
    report.quantized_layers.append(name)
    if x_dq is None:
        report.add(
            "placement",
            name,
            "weights are int8 but the input is not quantised: the layer runs in float",
        )
    if w_dq is None:
        report.add(
            "placement", name, "input is int8 but the weights are not quantised: no int8 kernel"
        )
        return
    source = _weight_source(g, w_dq)
    w = g.weight(source[0]) if source else None
    if w is None:
        report.add("weights", name, "quantised weights must be initializers")
        return
    scale = _const(g, w_dq.input[1])
    axis = next((a.i for a in w_dq.attribute if a.name == "axis"), 1)
    want_axis = 0
    if n.op_type == "Gemm" and not next((a.i for a in n.attribute if a.name == "transB"), 0):
        want_axis = 1
    if rules.weights_per_channel:
        if scale is None or scale.size == 1:
            report.add("per-channel", name, "weights must be quantised per output channel")
        elif axis != want_axis or scale.size != w.dims[want_axis]:
            report.add(
                "per-channel",
                name,
                f"weight scales must run along axis {want_axis} ({w.dims[want_axis]} channels), "
                f"found axis {axis} with {scale.size}",
            )
    if rules.bias == "int32" and len(n.input) > 2 and n.input[2]:
        b_dq = _from_dq(g, n.input[2])
        if b_dq is None:
            report.add("bias", name, "bias should be int32 behind DequantizeLinear")
        elif x_dq is not None and scale is not None:
            b_scale = _const(g, b_dq.input[1])
            x_scale = _const(g, x_dq.input[1])
            if b_scale is not None and x_scale is not None:
                want = (x_scale * scale).astype(np.float32)
                if not np.allclose(b_scale, want, rtol=1e-5, atol=0):
                    report.add("bias", name, "bias scale must equal input scale x weight scale")


def _note_concats(report: CheckReport, g: Graph) -> None:
    """Concats TensorRT builds but cannot run in int8 (a note, not a violation)."""
    for c in (n for n in g.model.graph.node if n.op_type == "Concat"):
        dqs = [_from_dq(g, t) for t in c.input]
        out_q = [u for u in g.consumers.get(c.output[0], []) if u.op_type == "QuantizeLinear"]
        if not any(dqs) or out_q:
            continue  # float, or quantised after the Concat (TensorRT moves that Q to the inputs)
        if not all(dqs):
            report.notes.append(
                f"{node_name(c)}: some inputs are int8 and some float: TensorRT copies it in float"
            )
            continue
        values = [_const(g, d.input[1]) for d in dqs if d]
        if any(v is None for v in values):
            continue  # non-constant scales are reported on the DQ nodes themselves
        scales = {float(np.asarray(v).ravel()[0]) for v in values if v is not None}
        if len(scales) > 1:
            report.notes.append(
                f"{node_name(c)}: inputs have {len(scales)} different scales: TensorRT cannot "
                "elide it in int8 (one scale per concatenation group can)"
            )


def _check_units(report: CheckReport, g: Graph) -> None:
    """Each quantised Conv/Gemm is a full DQ -> op -> Q unit, so it becomes a QLinear kernel."""
    outputs = set(g.outputs)
    for n in g.weighted_nodes():
        if node_name(n) in report.float_layers:
            continue
        out = n.output[0]
        if out in outputs:
            continue
        users = g.consumers.get(out, [])
        if not users or any(u.op_type != "QuantizeLinear" for u in users):
            report.add(
                "unit",
                node_name(n),
                "output is not quantised: ONNX Runtime runs DQ -> Conv in float without a Q after",
            )


def _check_ir(path: Path) -> CheckReport:
    """An OpenVINO IR written by NNCF: FakeQuantize before each Convolution/MatMul, int8
    weights. (NNCF's own layout: no Q/DQ rules of ours to apply.)"""
    try:
        import openvino  # noqa: F401  (only to say what is missing)
    except ImportError:
        raise UserError(
            "checking an OpenVINO IR needs openvino", fix="pip install openvino"
        ) from None
    report = CheckReport(PROFILE_OPENVINO, str(path))
    try:
        model = ovcore.core().read_model(str(path))
    except Exception as exc:
        raise UserError(
            f"not a readable OpenVINO IR ({str(exc).splitlines()[0][:200]})", path=path
        ) from None
    fq = 0
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        fq += kind == "FakeQuantize"
        if kind not in ("Convolution", "MatMul"):
            continue
        name = op.get_friendly_name()
        data = op.input_value(0).get_node()
        if data.get_type_name() != "FakeQuantize":
            report.float_layers.append(name)
            continue
        report.quantized_layers.append(name)
        weights = _ov_weight_source(op.input_value(1).get_node())
        if weights is None:
            report.add("weights", name, "weights are not int8 constants")
    if fq == 0:
        report.add("quantized", str(path), "no FakeQuantize nodes: not a quantised model")
    return report


def _ov_weight_source(node: Any) -> Any:
    """Follow Convert/Multiply/Subtract/Reshape back to an int8 Constant (NNCF's weight layout)."""
    for _ in range(6):
        kind = node.get_type_name()
        if kind == "Constant":
            return node if node.get_element_type().get_type_name() == "i8" else None
        if kind == "FakeQuantize":
            return node
        if kind not in ("Convert", "Multiply", "Subtract", "Reshape", "Transpose"):
            return None
        node = node.input_value(0).get_node()
    return None
