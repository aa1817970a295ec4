"""The latency harness on real engines: which clock it quotes, and that it is the engine's."""

from __future__ import annotations

import numpy as np
import pytest

from dense_edge.targets.registry import load_runner
from dense_edge.validate.latency import batch_of, measure, sample_calls


@pytest.mark.parametrize("engine", ["openvino-int8", "onnxruntime-int8"])
def test_each_call_is_timed_by_the_runtime_where_it_has_a_clock(validated, engine):
    run, _ = validated
    x = np.random.default_rng(0).standard_normal((1, 1, 8, 8)).astype(np.float32)
    with load_runner(run.engine(*engine.split("-"))) as runner:
        call = runner.timed_call(batch_of(x, 4))
        for _ in range(5):
            call.run()
        own, wall = sample_calls(call, iterations=200)
        stats = measure(runner, x, batch=4, iterations=200, show_progress=False)
    assert len(own) == len(wall) == 200
    if engine.startswith("openvino"):
        # OpenVINO's own clock runs inside the call: shorter than the call, never zero, in seconds
        assert call.clock == stats.clock == "OpenVINO InferRequest.latency"
        assert all(0 < o < w for o, w in zip(own, wall, strict=True))
        assert stats.p50_ms < stats.wall_p50_ms < 20 * stats.p50_ms
    else:
        # no clock of its own: the wall clock is the measure, and the only one
        assert call.clock == stats.clock == "wall" and call.engine_seconds is None
        assert own == wall and all(w > 0 for w in wall)
        assert stats.wall_p50_ms == stats.p50_ms
