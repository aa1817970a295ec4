"""The calibration profiles: how the calibrate stage writes each profile's int8 model.

Each profile is one :class:`Profile` object, got by name with :func:`get`; the names (the
recipe's ``calibration.profiles`` values) are declared in the catalogue and implemented here.
A profile's ``build`` writes its int8 model into the calibrate stage's folder. Everything that
differs between profiles (the model file's name, which recipe settings are its inputs, the
method it records, its rules) is an attribute of the profile, so no other module branches on a
profile's name. Judging a model against a profile is the checker's
(:mod:`dense_edge.calibrate.checker`: a model file, or a model in memory).

A profile dispatches to its builder: :mod:`dense_edge.calibrate.qdq_profile` for the Q/DQ
profiles (``tensorrt``, ``onnxruntime``), whose layout is a
:class:`~dense_edge.calibrate.rules.Rules`; :mod:`dense_edge.calibrate.nncf_openvino` for
``openvino``, quantised by NNCF, OpenVINO's own quantiser. A builder is handed what it needs
(the rules, the record's first fields, where to write the plan) and never imports this module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypedDict

from dense_edge.calibrate.nncf_openvino import IR_SUFFIX as IR_SUFFIX
from dense_edge.calibrate.nncf_openvino import build
from dense_edge.calibrate.rules import Rules, profile_named, rules_for
from dense_edge.catalog import (
    PROFILE_ONNXRUNTIME,
    PROFILE_OPENVINO,
    PROFILE_TENSORRT,
    PROFILES,
    ProfileName,
)
from dense_edge.records import FullCalibrationRecord

if TYPE_CHECKING:
    from dense_edge.calibrate.job import CalibrationJob
    from dense_edge.recipe.schema import CalibrationSection

# The names are declared in the catalogue; this module implements them.
TENSORRT: Final = PROFILE_TENSORRT
ONNXRUNTIME: Final = PROFILE_ONNXRUNTIME
OPENVINO: Final = PROFILE_OPENVINO
PLAN_FILE = "plan.json"  # a writes_plan profile's precision and traffic plan, next to its model
__all__ = ["IR_SUFFIX", "ONNXRUNTIME", "OPENVINO", "PLAN_FILE", "PROFILES", "TENSORRT",
           "NncfProfile", "Profile", "QdqProfile", "get"]  # fmt: skip


class ProfileInputs(TypedDict):
    """The recipe settings only some profiles depend on (None where a profile ignores one)."""

    float_parts: str | None  # calibration.float_parts
    preset: str | None  # calibration.nncf_preset


class Profile(ABC):
    """One calibration profile: how the calibrate stage writes its int8 model."""

    name: ProfileName
    model_file: str = "model.onnx"  # the int8 model's name in RUN/int8/<profile>/
    writes_plan: bool = False  # writes plan.json, the precision and traffic plan --explain prints

    def stage_inputs(self, c: CalibrationSection) -> ProfileInputs:
        """The profile-specific recipe settings the stage's currency depends on."""
        return {"float_parts": None, "preset": None}

    def method(self, c: CalibrationSection) -> str:
        """The method the calibration record names."""
        return c.method

    def percentile(self, c: CalibrationSection) -> float | None:
        return c.percentile if c.method == "percentile" else None

    def base_record(self, job: CalibrationJob) -> FullCalibrationRecord:
        """The calibration record's fields every profile writes."""
        c = job.config
        return {
            "profile": self.name,
            "method": self.method(c),
            "percentile": self.percentile(c),
            "calibration": job.calibration.describe(),
            "float_model": str(job.onnx_path),
        }

    @abstractmethod
    def build(self, job: CalibrationJob, target: Path) -> FullCalibrationRecord:
        """Write the int8 model to ``target``; return its calibration record."""


class QdqProfile(Profile):
    """A profile whose int8 model is a Q/DQ ONNX written by :mod:`dense_edge.calibrate.qdq`."""

    def __init__(
        self, name: ProfileName, *, float_parts_matter: bool = False, writes_plan: bool = False
    ):
        self.name = name
        self.float_parts_matter = float_parts_matter  # calibration.float_parts shapes the model
        self.writes_plan = writes_plan

    def rules(self, float_dtype: str = "fp16") -> Rules:
        return rules_for(self.name, float_dtype=float_dtype)

    def stage_inputs(self, c: CalibrationSection) -> ProfileInputs:
        return {"float_parts": c.float_parts if self.float_parts_matter else None, "preset": None}

    def build(self, job: CalibrationJob, target: Path) -> FullCalibrationRecord:
        from dense_edge.calibrate.qdq_profile import build

        plan_file = target.parent / PLAN_FILE if self.writes_plan else None
        rules = self.rules(job.config.float_parts)
        return build(job, rules, target, self.base_record(job), plan_file=plan_file)


class NncfProfile(Profile):
    """OpenVINO's own quantiser (NNCF) writes the model as OpenVINO IR."""

    model_file = "model" + IR_SUFFIX

    def __init__(self, name: ProfileName):
        self.name = name

    def stage_inputs(self, c: CalibrationSection) -> ProfileInputs:
        return {"float_parts": None, "preset": c.nncf_preset}

    def method(self, c: CalibrationSection) -> str:
        return self.method_for(c.nncf_preset)

    @staticmethod
    def method_for(preset: str) -> str:
        return f"nncf ({preset})"

    def percentile(self, c: CalibrationSection) -> float | None:
        return None

    def build(self, job: CalibrationJob, target: Path) -> FullCalibrationRecord:

        return build(job, target, self.base_record(job))


_PROFILES: dict[str, Profile] = {
    TENSORRT: QdqProfile(TENSORRT, float_parts_matter=True, writes_plan=True),
    ONNXRUNTIME: QdqProfile(ONNXRUNTIME),
    OPENVINO: NncfProfile(OPENVINO),
}


def get(name: str) -> Profile:
    """The profile called ``name``, or a ``UserError`` listing the names there are."""
    return _PROFILES[profile_named(name)]
