"""The OpenVINO runner runs each batch size on a model compiled for that shape.

A bundle's IR keeps the ONNX's dynamic batch; OpenVINO's CPU plugin runs a model whose shapes are
all known markedly faster (bench/cpu_engines.py), so the runner compiles one static-shape model per
batch size it is asked for, up to a limit, and runs larger sets of sizes on the dynamic one. What a
caller sees must not change: the same logits as the dynamic model, at every batch size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dense_edge.targets.openvino.runner import OpenVinoRunner

F32 = {"INFERENCE_PRECISION_HINT": "f32"}  # one precision for both models: equal to rounding


def _images(n: int) -> np.ndarray:
    return np.random.default_rng(n).standard_normal((n, 1, 8, 8)).astype(np.float32)


def _batch_dim(compiled: object) -> object:
    return compiled.input(0).get_partial_shape()[0]  # type: ignore[attr-defined]


def test_each_batch_size_runs_on_a_model_of_its_own_shape_with_the_same_logits(
    digits_exported: Path,
) -> None:
    model = digits_exported / "onnx" / "model.onnx"
    with (
        OpenVinoRunner(model, config=F32, static_batches=2) as static,
        OpenVinoRunner(model, config=F32, static_batches=0) as dynamic,
    ):
        assert _batch_dim(dynamic.compiled).is_dynamic
        for n in (1, 5, 1, 7):  # 7 is a third size: past the limit of 2
            got, want = static.infer(_images(n)), dynamic.infer(_images(n))
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
        assert sorted(static._static) == [1, 5]
        assert str(_batch_dim(static.compiled_for(5))) == "5"
        assert static.compiled_for(7) is static.compiled  # the dynamic model beyond the limit
        assert dynamic.compiled_for(1) is dynamic.compiled  # static_batches=0: never reshaped
        call = static.timed_call(_images(5))
        call.run()
        want = dynamic.infer(_images(5))
        np.testing.assert_allclose(call.output(), want, rtol=1e-4, atol=1e-4)
