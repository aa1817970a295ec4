"""The traffic and precision plan of a TensorRT Q/DQ model, read without TensorRT.

DenseNet INT8 on a GPU or Jetson is bound by memory traffic, so the question a layout must answer
is "how many bytes does one image move, and in which precision?". This module answers it from the
ONNX alone, with a *model* of what TensorRT does to a strongly typed Q/DQ network. It is an
estimate, not a measurement: TensorRT's real tactic and fusion choices can differ per GPU and
version. Compare layouts with it (ours against ModelOpt's, int8 against the FP16 engine), and
measure engines on the device for absolute numbers.

The model of TensorRT it assumes:

1. A Q/DQ pair is not a kernel: TensorRT fuses Q into the layer that produces the tensor (the
   producer then writes int8) and DQ into the layers that read it (they read int8). A tensor
   that is read both through Q/DQ and directly in float is written in float and converted to
   int8 by an extra kernel (read float, write int8): the float copy stays alive.
2. Conv/Gemm absorb what follows them when the intermediate tensor has no other reader: a
   BatchNorm, a ReLU and other pointwise ops (and a Cast) run in the convolution's epilogue;
   chains of pointwise ops (BatchNorm -> ReLU after a Concat) run as one kernel.
3. A Concat is elided (its producers write straight into the joined buffer, no copy) when
   all its inputs and its output share one precision: all float, or all int8 with one scale.
   TensorRT also propagates a Q after a Concat backwards onto float inputs, so "float inputs,
   quantised output" counts as an int8 Concat whose producers write int8. Otherwise the Concat
   is a copy kernel (read every input, write the output).
   A producer writes into *one* buffer: a tensor read by k elided Concats is written straight
   into the first one's and copied into each of the other k-1 (TensorRT's verbose log:
   "Generating copy ... because input is not movable"), each copy reading and writing the
   tensor once, about one copy kernel per Concat that takes a copied input. In the torchvision
   layout a feature map feeds every later Concat of its block (up to 4 / 16 / 24 on digits /
   DenseNet-BC-100 / densenet121); in the chained layout (:mod:`dense_edge.calibrate.layout`)
   each feeds one, and nothing is copied.
4. Pooling, GlobalAveragePool and the remaining pointwise ops are kernels that read their input
   and write their output, in int8 when DQ'd in and Q'd out, else in the tensor's float type.
   Flatten/Reshape/Squeeze/Unsqueeze/Identity are free views.
5. Every materialised tensor is written once by its producer and read once by each kernel that
   consumes it (a 3x3 convolution reads its input once: caches are assumed to catch the halo).
6. Weights are read once per batch, listed separately (bytes per image at batch 1).

Bytes per element: int8 1, fp16/bf16 2, fp32 4. Batch dimension excluded (per image). The
FP16-engine figure applies the same rules to the float model with every tensor in FP16 and FP32
model inputs and outputs (the FP16 ONNX that ``export --precision fp16`` writes).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto

from dense_edge.calibrate.graph import Graph, node_name
from dense_edge.records import LayoutTraffic, TensorTrafficRecord, TrafficPlan

VIEWS = ("Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity")
POINTWISE = ("Relu", "BatchNormalization", "Add", "Mul", "Sub", "Div", "Sigmoid", "Clip", "Cast")
FUSES_EPILOGUE = ("Conv", "Gemm", "ConvTranspose", "MatMul", *POINTWISE)
QDQ = ("QuantizeLinear", "DequantizeLinear")
BYTES = {"int8": 1, "fp16": 2, "bf16": 2, "fp32": 4}
_FLOAT_NAMES: dict[int, str] = {
    TensorProto.FLOAT: "fp32",
    TensorProto.FLOAT16: "fp16",
    TensorProto.BFLOAT16: "bf16",
}

ASSUMPTIONS = [
    "Q fused into the producer, DQ into each reader; a tensor read both quantised and in float "
    "is written in float plus one float->int8 conversion",
    "BatchNorm/ReLU/pointwise ops fused into a preceding Conv/Gemm or pointwise kernel when the "
    "intermediate has no other reader",
    "Concat elided when inputs and output share one precision (int8: one scale; a Q after a "
    "Concat propagates back onto float inputs); else a copy",
    "a tensor read by k elided Concats is written into one and copied into k-1 (read + write "
    "each), about one copy kernel per Concat taking a copied input",
    "pools and remaining pointwise ops read their input and write their output; views are free",
    "each materialised tensor written once, read once per consuming kernel; weights separate",
]


@dataclass
class TensorTraffic:
    tensor: str
    precision: str  # how it is stored: int8, fp16, fp32
    elements: int  # per image
    written: int  # bytes per image
    read: int  # bytes per image, all readers
    readers: int
    copies: int = 0  # Concat buffers it is copied into (its bytes are in written/read)

    @property
    def total(self) -> int:
        return self.written + self.read

    def to_dict(self) -> TensorTrafficRecord:
        return {
            "tensor": self.tensor,
            "precision": self.precision,
            "elements": self.elements,
            "written_bytes": self.written,
            "read_bytes": self.read,
            "readers": self.readers,
            "concat_copies": self.copies,
        }


@dataclass
class Traffic:
    tensors: list[TensorTraffic] = field(default_factory=list)
    weight_bytes: int = 0
    kernels: int = 0
    copy_bytes: int = 0  # of total: Concat inputs copied because they feed several Concats
    copy_kernels: int = 0  # of kernels

    @property
    def total(self) -> int:
        return sum(t.total for t in self.tensors)

    def by_precision(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for t in self.tensors:
            row = out.setdefault(t.precision, {"tensors": 0, "bytes": 0})
            row["tensors"] += 1
            row["bytes"] += t.total
        return dict(sorted(out.items()))


def estimate(
    model: onnx.ModelProto, *, as_fp16: bool = False, count_copies: bool = True
) -> Traffic:
    """Bytes per image moved by the engine TensorRT would build from ``model``.

    ``as_fp16`` treats a float model as its FP16 engine (every tensor FP16, inputs and outputs
    FP32 with a Cast at each end). ``count_copies=False`` gives the older, optimistic figure in
    which every elided Concat costs nothing (kept for comparison).
    """
    g = Graph(model)
    info = _value_info(model)
    outputs = set(g.outputs)

    def elements(t: str) -> int:
        shape = info.get(t, (None, []))[1]
        return int(np.prod([d or 1 for d in shape[1:]], dtype=np.int64)) if shape else 0

    def float_type(t: str) -> str:
        if as_fp16:
            return "fp16"
        return info.get(t, ("fp32", []))[0]

    def resolve(t: str) -> tuple[str, float | None]:
        """The value a node input carries and, if it arrives through Q/DQ, its int8 scale."""
        node = g.producer.get(t)
        if node is None:
            return t, None
        if node.op_type in VIEWS:
            return resolve(node.input[0])
        if node.op_type == "DequantizeLinear":
            q = g.producer.get(node.input[0])
            if q is not None and q.op_type == "QuantizeLinear" and q.input[0] not in g.initializers:
                value, _ = resolve(q.input[0])
                return value, _scale(g, q)
        return t, None

    def is_weight(t: str) -> bool:
        node = g.producer.get(t)
        while node is not None and node.op_type in (*QDQ, "Cast", "Transpose", "Reshape"):
            t = node.input[0]
            node = g.producer.get(t)
        return t in g.initializers or (node is not None and node.op_type == "Constant")

    compute = [n for n in g.model.graph.node if n.op_type not in (*QDQ, *VIEWS, "Constant")]
    # Elided Concats: int8 ones (by the scale of their group) and all-float ones.
    int8_concat: dict[str, float] = {}
    float_concat: set[str] = set()
    for c in (n for n in compute if n.op_type == "Concat"):
        ins = [resolve(i) for i in c.input if i and not is_weight(i)]
        q_scales = {_scale(g, q) for q in _q_readers(g, c.output[0])}
        in_scales = {s for _, s in ins}
        only_in = next(iter(in_scales)) if len(in_scales) == 1 else None
        only_q = next(iter(q_scales)) if len(q_scales) == 1 else None
        if only_in is not None and q_scales <= in_scales:
            int8_concat[c.output[0]] = only_in
        elif only_q is not None and in_scales - {None} <= q_scales:
            int8_concat[c.output[0]] = only_q
        elif in_scales == {None} and not q_scales:
            float_concat.add(c.output[0])

    # One producer, one buffer: a value read by several elided Concats is copied into all but
    # the first (graph order); a Concat taking a copied input runs one copy kernel.
    copies: dict[str, int] = defaultdict(int)
    copy_concats: set[str] = set()
    if count_copies:
        placed: set[str] = set()
        for c in (n for n in compute if n.op_type == "Concat"):
            if c.output[0] not in int8_concat and c.output[0] not in float_concat:
                continue
            for value in dict.fromkeys(resolve(i)[0] for i in c.input if i and not is_weight(i)):
                if value in placed:
                    copies[value] += 1
                    copy_concats.add(c.output[0])
                placed.add(value)

    # Reads of every value by every kernel: value -> [(kernel, form)]. An elided Concat reads
    # nothing, but fixes the form its inputs are stored in ("int8-elided" / "float-elided").
    reads: dict[str, list[tuple[str, str]]] = defaultdict(list)
    fused_into: dict[str, str] = {}  # pointwise node -> kernel it runs in
    weight_bytes = 0
    for n in compute:
        elided = n.output[0] in int8_concat or n.output[0] in float_concat
        for i in n.input:
            if not i:
                continue
            if is_weight(i):
                weight_bytes += _weight_bytes(g, i, as_fp16)
                continue
            value, scale = resolve(i)
            if elided:
                form = "int8-elided" if n.output[0] in int8_concat else "float-elided"
            else:
                form = "int8" if scale is not None or value in int8_concat else "float"
            reads[value].append((node_name(n), form))

    # Pointwise ops fused into the kernel that produces their only input.
    producer_kernel: dict[str, str] = {}
    for n in compute:
        data = [i for i in n.input if i and not is_weight(i)]
        if n.op_type in POINTWISE and len(data) == 1:
            value = resolve(data[0])[0]
            src = g.producer.get(value)
            if (
                src is not None
                and src.op_type in FUSES_EPILOGUE
                and value not in outputs
                and not _q_readers(g, value)
                and [k for k, _ in reads[value]] == [node_name(n)]
            ):
                fused_into[node_name(n)] = producer_kernel.get(value, node_name(src))
                reads[value] = []
                producer_kernel[n.output[0]] = fused_into[node_name(n)]
                continue
        for o in n.output:
            producer_kernel[o] = node_name(n)

    traffic = Traffic(weight_bytes=weight_bytes)
    elided_values = set(int8_concat) | float_concat
    traffic.kernels = sum(
        1 for n in compute if node_name(n) not in fused_into and n.output[0] not in elided_values
    )
    for o in g.outputs:
        reads.setdefault(o, [])
    for value, readers in reads.items():
        node = g.producer.get(value)
        if node is None and value not in g.inputs:
            continue
        if not readers and value not in outputs:
            continue  # fused into the kernel that reads it
        n_el = elements(value)
        if node is None:  # a model input, in its own type (FP32)
            stored = info.get(value, ("fp32", []))[0]
        elif value in int8_concat or (readers and all(f.startswith("int8") for _, f in readers)):
            stored = "int8"
        else:
            stored = float_type(value)
        int8_reads = sum(form == "int8" for _, form in readers)
        float_reads = sum(form == "float" for _, form in readers)
        needs_int8 = any(form.startswith("int8") for _, form in readers)
        if value in int8_concat:
            int8_reads, float_reads = int8_reads + float_reads, 0  # DQ propagates forward
        written = 0 if node is None or value in elided_values else n_el * BYTES[stored]
        read = n_el * (int8_reads + BYTES[stored] * float_reads)
        if stored != "int8" and needs_int8:
            # a float tensor also read quantised: one conversion kernel (read float, write int8)
            written += n_el * BYTES["int8"]
            read += n_el * BYTES[stored]
            traffic.kernels += 1
        if node is None and as_fp16 and stored != "fp16":
            # the FP16 engine's input Cast: read FP32 once, write FP16; readers read FP16
            written += n_el * BYTES["fp16"]
            read = n_el * (BYTES[stored] + BYTES["fp16"] * float_reads)
            stored = "fp16"
            traffic.kernels += 1
        if value in outputs and as_fp16:
            written += n_el * BYTES["fp32"]  # the output Cast back to FP32
            read += n_el * BYTES[stored]
        copy = copies.get(value, 0) * n_el * BYTES[stored]
        traffic.copy_bytes += 2 * copy
        traffic.tensors.append(
            TensorTraffic(
                value,
                stored,
                n_el,
                written + copy,
                read + copy,
                len(readers),
                copies.get(value, 0),
            )
        )
    traffic.copy_kernels = len(copy_concats)
    traffic.kernels += traffic.copy_kernels
    return traffic


def _scale(g: Graph, q: onnx.NodeProto) -> float | None:
    init = g.weight(q.input[1])
    if init is None:
        return None
    return float(np.asarray(onnx.numpy_helper.to_array(init), np.float64).ravel()[0])


def _q_readers(g: Graph, tensor: str) -> list[onnx.NodeProto]:
    out = []
    for u in g.consumers.get(tensor, []):
        if u.op_type == "QuantizeLinear":
            out.append(u)
        elif u.op_type in VIEWS:
            out += _q_readers(g, u.output[0])
    return out


def _weight_bytes(g: Graph, t: str, as_fp16: bool) -> int:
    """Bytes of one weight input: int8 when it arrives through Q/DQ, else its float type."""
    node = g.producer.get(t)
    quantised = False
    while node is not None and node.op_type in (*QDQ, "Cast", "Transpose", "Reshape"):
        quantised |= node.op_type == "DequantizeLinear"
        t = node.input[0]
        node = g.producer.get(t)
    init = g.weight(t)
    if init is None:
        return 0
    n = int(np.prod(init.dims, dtype=np.int64))
    if quantised or init.data_type == TensorProto.INT8:
        return n
    if as_fp16:
        return 2 * n
    return n * BYTES[_FLOAT_NAMES.get(int(init.data_type), "fp32")]


def _value_info(model: onnx.ModelProto) -> dict[str, tuple[str, list[int | None]]]:
    """Tensor -> (float type name, shape) from ONNX shape inference."""
    inferred = onnx.shape_inference.infer_shapes(model)
    out: dict[str, tuple[str, list[int | None]]] = {}
    g = inferred.graph
    for vi in [*g.input, *g.value_info, *g.output]:
        tt = vi.type.tensor_type
        dims: list[int | None] = [
            d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim
        ]
        out[vi.name] = (_FLOAT_NAMES.get(tt.elem_type, "int8"), dims)
    return out


# -- the plan written next to the model ---------------------------------------------------------


def plan_record(qmodel: onnx.ModelProto, float_model: onnx.ModelProto) -> TrafficPlan:
    """``plan.json``: per tensor precision and bytes, totals, and the FP16-engine estimate."""
    ours = estimate(qmodel)
    fp16 = estimate(float_model, as_fp16=True)
    uncopied = estimate(qmodel, count_copies=False)
    return {
        "what": "estimated bytes moved per image by the TensorRT engine of this Q/DQ model",
        "estimate": True,
        "assumptions": ASSUMPTIONS,
        "model_of_tensorrt": "dense_edge/calibrate/traffic.py (module docstring)",
        "total_bytes_per_image": ours.total,
        "weight_bytes": ours.weight_bytes,
        "kernels": ours.kernels,
        "concat_copies": {"bytes_per_image": ours.copy_bytes, "kernels": ours.copy_kernels},
        "without_concat_copies": {
            "total_bytes_per_image": uncopied.total,
            "kernels": uncopied.kernels,
        },
        "by_precision": ours.by_precision(),
        "fp16_engine": {
            "total_bytes_per_image": fp16.total,
            "weight_bytes": fp16.weight_bytes,
            "kernels": fp16.kernels,
            "concat_copies": {"bytes_per_image": fp16.copy_bytes, "kernels": fp16.copy_kernels},
        },
        "layouts": layouts_record(qmodel),
        "ratio_to_fp16_engine": round(ours.total / fp16.total, 4) if fp16.total else None,
        "tensors": [t.to_dict() for t in sorted(ours.tensors, key=lambda t: -t.total)],
    }


def layouts_record(qmodel: onnx.ModelProto) -> dict[str, LayoutTraffic]:
    """The int8 engine's estimate in both concatenation layouts: the model's own and the other
    one, rewritten from it (:func:`dense_edge.calibrate.layout.relayout`)."""
    from dense_edge.calibrate.layout import LAYOUTS, detect, relayout

    own = detect(qmodel)
    if own is None:
        return {}
    out: dict[str, LayoutTraffic] = {}
    for layout in LAYOUTS:
        model = qmodel if layout == own else relayout(qmodel, layout)
        t = estimate(model)
        out[layout] = {
            "exported": layout == own,
            "total_bytes_per_image": t.total,
            "kernels": t.kernels,
            "concat_copy_bytes": t.copy_bytes,
            "concat_copy_kernels": t.copy_kernels,
        }
    return out


def explain_lines(plan: TrafficPlan, top: int = 8) -> list[str]:
    """A few lines for ``calibrate --explain``."""
    mb = 1e6
    copies = plan.get("concat_copies", {"bytes_per_image": 0, "kernels": 0})
    lines = [
        f"estimated traffic per image: {plan['total_bytes_per_image'] / mb:.3f} MB int8 engine, "
        f"{plan['fp16_engine']['total_bytes_per_image'] / mb:.3f} MB FP16 engine "
        f"(ratio {plan['ratio_to_fp16_engine']}); weights {plan['weight_bytes'] / mb:.3f} MB "
        "per batch",
        f"  of which Concat copies: {copies['bytes_per_image'] / mb:.3f} MB in "
        f"{copies['kernels']} copy kernels ({plan['kernels']} kernels in all)",
    ]
    for layout, row in plan.get("layouts", {}).items():
        mark = "this model" if row["exported"] else "if exported so"
        lines.append(
            f"  {layout:>11} layout ({mark}): {row['total_bytes_per_image'] / mb:.3f} MB, "
            f"{row['kernels']} kernels, copies {row['concat_copy_bytes'] / mb:.3f} MB"
        )
    for prec, counts in plan["by_precision"].items():
        lines.append(f"  {prec:>5}: {counts['tensors']:4d} tensors, {counts['bytes'] / mb:.3f} MB")
    lines.append(f"largest {top} tensors (precision, bytes written + read):")
    for t in plan["tensors"][:top]:
        lines.append(
            f"  {t['precision']:>5} {(t['written_bytes'] + t['read_bytes']) / mb:8.4f} MB  "
            f"{t['tensor']}"
        )
    lines.append("an estimate from a model of TensorRT's fusions (see plan.json 'assumptions')")
    return lines


def strip_qdq(model: onnx.ModelProto) -> onnx.ModelProto:
    """The float model under a Q/DQ model (Q/DQ and Casts removed, weights dequantised): what
    the FP16-engine estimate is computed on when only the quantised model is at hand."""
    import copy

    from onnx import numpy_helper

    model = copy.deepcopy(model)
    g = Graph(model)
    source: dict[str, str] = {}
    new_inits: list[onnx.TensorProto] = []
    for n in model.graph.node:
        if n.op_type in ("QuantizeLinear", "Cast"):
            source[n.output[0]] = n.input[0]
        elif n.op_type == "DequantizeLinear":
            init = g.weight(n.input[0])
            if init is not None:
                scale = numpy_helper.to_array(g.initializers[n.input[1]]).astype(np.float32)
                q = numpy_helper.to_array(init).astype(np.float32)
                axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
                shape = [1] * q.ndim
                if scale.size > 1:
                    shape[axis] = -1
                w = q * scale.reshape(shape) if scale.size > 1 else q * float(scale)
                new_inits.append(numpy_helper.from_array(w.astype(np.float32), n.output[0]))
            else:
                source[n.output[0]] = n.input[0]

    def root(t: str) -> str:
        while t in source:
            t = source[t]
        return t

    keep = [n for n in model.graph.node if n.op_type not in (*QDQ, "Cast")]
    for n in keep:
        for i, name in enumerate(n.input):
            n.input[i] = root(name)
    for out in model.graph.output:
        producer = [n for n in keep if root(out.name) in n.output]
        for n in producer:
            n.output[list(n.output).index(root(out.name))] = out.name
    del model.graph.node[:]
    model.graph.node.extend(keep)
    model.graph.initializer.extend(new_inits)
    for init in model.graph.initializer:
        if init.data_type == TensorProto.FLOAT16:
            init.CopyFrom(
                numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float32), init.name)
            )
    del model.graph.value_info[:]
    return model
