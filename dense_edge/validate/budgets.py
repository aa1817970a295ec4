"""Accuracy and latency budgets: what a user's CI gates on."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Budgets:
    max_top1_drop: float | None = None  # points of top-1 lost against the float model
    min_agreement: float | None = None  # fraction of images whose top-1 equals the float's
    max_p99_ms: float | None = None  # at every measured batch size
    min_speedup: float | None = None  # float p50 / engine p50, at every batch size

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check(engine: dict[str, Any], b: Budgets) -> list[dict[str, Any]]:
    """Broken budgets of one engine's report entry."""
    broken = []
    acc = engine.get("accuracy", {})
    name = engine["name"]
    drop = acc.get("top1_drop_points")
    if b.max_top1_drop is not None and drop is not None and drop > b.max_top1_drop:
        broken.append(_v(name, "max_top1_drop", drop, b.max_top1_drop, "points"))
    agree = acc.get("agreement")
    if b.min_agreement is not None and agree is not None and agree < b.min_agreement:
        broken.append(_v(name, "min_agreement", agree, b.min_agreement, ""))
    for batch, lat in engine.get("latency", {}).items():
        if b.max_p99_ms is not None and lat["p99_ms"] > b.max_p99_ms:
            broken.append(
                _v(name, "max_p99_ms", lat["p99_ms"], b.max_p99_ms, f"ms at batch {batch}")
            )
        speed = engine.get("speedup", {}).get(batch)
        if b.min_speedup is not None and speed is not None and speed < b.min_speedup:
            broken.append(_v(name, "min_speedup", speed, b.min_speedup, f"x at batch {batch}"))
    return broken


def _v(engine: str, budget: str, value: float, limit: float, unit: str) -> dict[str, Any]:
    return {"engine": engine, "budget": budget, "value": value, "limit": limit, "unit": unit}


def describe(v: dict[str, Any]) -> str:
    op = ">" if v["budget"].startswith("max") else "<"
    unit = f" {v['unit']}" if v["unit"] else ""
    return f"{v['engine']}: {v['budget']} broken ({v['value']:.4g} {op} {v['limit']:.4g}{unit})"
