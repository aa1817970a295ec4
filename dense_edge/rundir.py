"""The run directory: each stage's output in a fixed place, and build-like reuse.

    RUN/model/                      weights.safetensors + manifest.json   (train)
    RUN/onnx/                       model.onnx + parity.json              (export)
    RUN/int8/<profile>/             model.onnx + calibration.json         (calibrate)
    RUN/int8/stats/                 cached activation statistics          (calibrate)
    RUN/engines/<target>-<precision>/  engine files + manifest.json       (compile)
    RUN/report/                     report.json, report.md, report.html   (validate, report)

Every stage writes ``stage.json`` last, holding the fingerprint of its inputs. A stage whose
``stage.json`` matches the fingerprint of its current inputs is reused, not redone; ``--force``
redoes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dense_edge.fileio import ensure_dir, read_json, sha256_json, write_json
from dense_edge.manifest import now

STAGE_FILE = "stage.json"


@dataclass(frozen=True)
class RunDir:
    root: Path

    @classmethod
    def at(cls, path: str | Path) -> RunDir:
        return cls(Path(path).expanduser().resolve())

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def onnx(self) -> Path:
        return self.root / "onnx"

    @property
    def onnx_model(self) -> Path:
        return self.onnx / "model.onnx"

    @property
    def int8(self) -> Path:
        return self.root / "int8"

    def int8_profile(self, profile: str) -> Path:
        return self.int8 / profile

    @property
    def stats(self) -> Path:
        return self.int8 / "stats"

    def engine(self, target: str, precision: str) -> Path:
        return self.root / "engines" / f"{target}-{precision}"

    @property
    def report(self) -> Path:
        return self.root / "report"

    def create(self) -> RunDir:
        ensure_dir(self.root)
        return self


def fingerprint(**inputs: Any) -> str:
    return sha256_json(inputs)


def stage_record(folder: Path, record: str = STAGE_FILE) -> dict[str, Any] | None:
    f = folder / record
    if not f.exists():
        return None
    try:
        data = read_json(f)
    except Exception:
        return None
    return data if isinstance(data, dict) else None


def is_current(folder: Path, fp: str, record: str = STAGE_FILE) -> bool:
    """True when ``folder`` holds a finished stage made from the same inputs."""
    rec = stage_record(folder, record)
    return rec is not None and rec.get("fingerprint") == fp


def mark_done(folder: Path, stage: str, fp: str, record: str = STAGE_FILE, **info: Any) -> None:
    write_json(folder / record, {"stage": stage, "fingerprint": fp, "completed": now(), **info})


def default_run_dir(recipe_name: str) -> Path:
    return Path("runs") / recipe_name
