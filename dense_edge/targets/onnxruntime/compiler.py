"""Build an ONNX Runtime engine bundle: the model optimised offline, session options recorded.

The saved model is optimised at the ``extended`` level: Q/DQ units are already fused into
QLinearConv/QLinearConcat kernels and BatchNorm/ReLU fusions are done, but nothing is specific
to this machine's CPU (the ``all`` level adds a layout that is). At run time the session applies
``all`` on top, on whatever CPU it lands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dense_edge.errors import UserError
from dense_edge.stages import room_for
from dense_edge.targets.onnxruntime import util

MODEL = "model.onnx"
OFFLINE_LEVEL = "extended"
RUNTIME_LEVEL = "all"


def compile_engine(
    source: Path,
    out_dir: Path,
    *,
    precision: str,
    device: str | None,
    hint: str,
    threads: int | None,
    streams: int | None,
) -> dict[str, Any]:
    import onnxruntime as ort

    if precision == "bf16":
        raise UserError(
            "ONNX Runtime's CPU provider has no bf16 kernels",
            fix="use --target openvino for bf16, or fp32/fp16/int8 here",
        )
    providers = util.resolve_provider(device)
    opts = util.session_options(OFFLINE_LEVEL, threads)
    opts.optimized_model_filepath = str(out_dir / MODEL)
    try:
        ort.InferenceSession(str(source), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for unreadable models
        # ORT also writes the optimised model here, and a full disk reads "Protobuf
        # serialization failed": a write of the model's size tells the two apart
        room_for(out_dir, source.stat().st_size, shown=out_dir.parent)
        raise UserError(
            f"ONNX Runtime cannot load the model ({str(exc).splitlines()[0][:200]})",
            path=source,
            fix="re-create it with dense-edge export/calibrate --force",
        ) from None
    # Load what was written, with the run-time settings, to prove it works and see the providers.
    check = ort.InferenceSession(
        str(out_dir / MODEL), util.session_options(RUNTIME_LEVEL, threads), providers=providers
    )
    return {
        "files": [MODEL],
        "runtime": {"name": "onnxruntime", "version": ort.__version__},
        "device": check.get_providers()[0],
        "device_name": check.get_providers()[0],
        "config": {
            "providers": check.get_providers(),
            "graph_optimization_offline": OFFLINE_LEVEL,
            "graph_optimization_runtime": RUNTIME_LEVEL,
            "intra_op_num_threads": threads,
        },
        "precision_run": util.precision_run(out_dir / MODEL),
        "threads": threads,
        "streams": None,
    }
