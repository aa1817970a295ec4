"""Will an engine load here? TensorRT engines are tied to a TensorRT version and a GPU model.

Deserialising an engine from another version or GPU fails with a log line and a None engine;
checking the manifest first turns that into a message that says which and how to rebuild.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dense_edge.errors import UserError

if TYPE_CHECKING:
    from dense_edge.manifest import EngineRuntime


def check(
    manifest: EngineRuntime, *, trt_version: str, gpu_name: str, compute_capability: str
) -> None:
    built = manifest.get("runtime", {}).get("version")
    built_gpu = manifest.get("gpu", {})
    rebuild = (
        "rebuild it here: dense-edge compile --target tensorrt --precision "
        + str(manifest.get("precision", "int8"))
        + " --force (or run the bundle's trtexec.sh)"
    )
    if built and _release(built) != _release(trt_version):
        raise UserError(
            f"this engine was built with TensorRT {built}; this machine has TensorRT {trt_version}",
            fix=rebuild,
        )
    cc = built_gpu.get("compute_capability")
    hardware_compatible = manifest.get("config", {}).get("hardware_compatibility", "NONE") != "NONE"
    if cc and cc != compute_capability and not hardware_compatible:
        raise UserError(
            f"this engine was built for {built_gpu.get('name', 'another GPU')} (sm {cc}); this "
            f"machine has {gpu_name} (sm {compute_capability})",
            fix=rebuild,
        )


def _release(version: str) -> tuple[str, ...]:
    """Engines load only on the TensorRT they were built with (major.minor.patch)."""
    return tuple(version.split(".")[:3])
