"""The engine to ship: the fastest meeting every budget, and a stable choice among ties."""

from __future__ import annotations

from typing import Any

from dense_edge.validate.verdict import recommendations

SOUND = {"status": "sound"}


def _engine(name: str, p50: float, half_width: float, drop: float, size: int) -> dict[str, Any]:
    return {
        "name": name,
        "target": "openvino",
        "status": "measured",
        "budget_status": "pass",
        "size_bytes": size,
        "accuracy": {"top1_drop_points": drop},
        "latency": {
            "1": {
                "p50_ms": p50,
                "p50_ci_low_ms": p50 - half_width,
                "p50_ci_high_ms": p50 + half_width,
            }
        },
    }


def _pick(engines: list[dict[str, Any]]) -> dict[str, Any]:
    return recommendations(engines, ["openvino"], 1, SOUND)[0]


def test_the_fastest_wins_when_its_interval_stands_apart() -> None:
    rec = _pick(
        [
            _engine("openvino-fp32", 2.0, 0.05, 0.0, 900),
            _engine("openvino-int8", 1.0, 0.05, 0.3, 300),
        ]
    )
    assert rec["engine"] == "openvino-int8"
    assert "2.00x faster than openvino-fp32" in rec["reason"]


def test_engines_tied_on_speed_give_the_same_choice_whichever_measured_faster() -> None:
    # two re-runs of one run: the medians swap order inside overlapping intervals
    first = [
        _engine("openvino-fp32", 1.00, 0.1, 0.0, 900),
        _engine("openvino-int8", 1.05, 0.1, 0.28, 300),
    ]
    second = [
        _engine("openvino-fp32", 1.05, 0.1, 0.0, 900),
        _engine("openvino-int8", 1.00, 0.1, 0.28, 300),
    ]
    a, b = _pick(first), _pick(second)
    assert a["engine"] == b["engine"] == "openvino-fp32"  # the smaller top-1 drop
    assert "tied on speed with openvino-int8" in a["reason"]
    assert "smallest top-1 drop" in a["reason"]
    # equal accuracy: the smaller engine, again whichever was faster this time
    same = [
        _engine("openvino-fp32", 1.00, 0.1, 0.0, 900),
        _engine("openvino-int8", 1.05, 0.1, 0.0, 300),
    ]
    assert _pick(same)["engine"] == "openvino-int8"
    assert "smallest size" in _pick(same)["reason"]
