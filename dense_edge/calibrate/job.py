"""What a profile needs to write its int8 model: the float model, the calibration images, the
method, the validation split and the recipe's calibration settings (one per calibrate run,
shared by every profile, so statistics are collected once)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dense_edge.calibrate.dataset import CalibrationSet
from dense_edge.calibrate.methods import MethodOptions
from dense_edge.manifest import new_manifest
from dense_edge.preprocess import Preprocess

if TYPE_CHECKING:
    from dense_edge.calibrate.collect import Statistics
    from dense_edge.recipe.schema import CalibrationSection

_STAMP_KEYS = ("format", "format_version", "kind", "versions", "created")


@dataclass
class CalibrationJob:
    config: CalibrationSection  # the recipe's calibration section
    onnx_path: Path  # the float model
    manifest: dict[str, Any]  # the float model's manifest
    preprocess: Preprocess
    calibration: CalibrationSet
    opts: MethodOptions
    val: tuple[np.ndarray, np.ndarray] | None  # labelled validation images, if any
    stats_dir: Path | None  # where statistics are cached
    debug: bool = False
    _stats: Statistics | None = None

    def stats(self) -> Statistics:
        """The calibration images' statistics on the float model, collected once."""
        if self._stats is None:
            from dense_edge.calibrate.collect import (
                batch_size_for,
                collect,
                histogram_bins,
                stats_key,
            )

            images = self.calibration.images
            bins = histogram_bins(self.config.bins)
            key = stats_key(self.onnx_path, self.calibration.identity, bins)
            self._stats = collect(
                self.onnx_path,
                images,
                bins=bins,
                key=key,
                cache_dir=self.stats_dir,
                batch_size=batch_size_for(images),
            )
        return self._stats


def int8_manifest(
    manifest: dict[str, Any], profile: str, method: str, float_layers: list[str]
) -> dict[str, Any]:
    """The float model's manifest, re-stamped for its int8 derivative."""
    fields = {k: v for k, v in manifest.items() if k not in _STAMP_KEYS}
    return new_manifest(
        "int8",
        **{**fields, "precision": "int8", "profile": profile, "method": method,
           "float_layers": float_layers},
    )  # fmt: skip
