"""The OpenVINO target: an IR (.xml/.bin) compiled for CPU (or GPU/NPU/AUTO where present)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from dense_edge import catalog, ovcore
from dense_edge.targets.base import Compiled, DeviceProperties, Runner, Target, TargetStatus
from dense_edge.targets.openvino.compiler import compile_engine
from dense_edge.targets.openvino.runner import OpenVinoRunner

if TYPE_CHECKING:
    from dense_edge.manifest import EngineManifest
    from dense_edge.recipe.schema import TargetSection


class OpenVinoTarget(Target, declared=catalog.OPENVINO):
    int8_source = "ir"
    fp16_source = "fp32-onnx"

    def status(self) -> TargetStatus:
        try:
            import openvino as ov
        except ImportError as exc:
            return TargetStatus(False, None, f"not installed ({exc.msg})")
        core = ovcore.core()
        devices = {}
        for d in core.available_devices:
            entry: DeviceProperties = {}
            for prop in ("FULL_DEVICE_NAME", "OPTIMIZATION_CAPABILITIES",
                         "INFERENCE_PRECISION_HINT"):  # fmt: skip
                try:
                    entry[prop.lower()] = _plain(core.get_property(d, prop))
                except Exception:  # a device may not know a property
                    pass
            devices[d] = entry
        return TargetStatus(True, ov.get_version(), details={"devices": devices})

    def doctor_rows(self, status: TargetStatus) -> list[tuple[str, str, str]]:
        if not status.installed:
            return [(self.name, "not installed", self.install_hint)]
        version = (status.version or "?").split("-")[0]
        return [
            (f"{self.name} {dev}", version,
             f"{props.get('full_device_name', '')}; default precision "
             f"{props.get('inference_precision_hint', '?')}; "
             f"{', '.join(cast('list[str]', props.get('optimization_capabilities', [])))}")
            for dev, props in status.details["devices"].items()
        ]  # fmt: skip

    def compile(
        self,
        source: Path,
        out: Path,
        *,
        precision: str,
        settings: TargetSection,
        float_onnx: Path,
        cache_dir: Path,
    ) -> Compiled:
        fields = compile_engine(source, out, precision=precision, device=settings.device,
                                hint=settings.hint, threads=settings.threads,
                                streams=settings.streams)  # fmt: skip
        # openvino.txt: the compile settings, for device apps that read no JSON
        return Compiled(fields.pop("files"), fields, sidecar_config=fields["config"])

    def load_runner(self, folder: Path, manifest: EngineManifest) -> Runner:

        return OpenVinoRunner.from_bundle(folder, manifest)


def _plain(v: Any) -> str | int | float | bool | list[str]:
    if isinstance(v, (list, tuple)):
        return [str(x) for x in v]
    if hasattr(v, "get_type_name"):  # an OpenVINO element type: "bf16", "f32"
        return str(v.get_type_name())
    return str(v) if not isinstance(v, (int, float, bool)) else v


TARGET = OpenVinoTarget()
