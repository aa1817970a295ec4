"""Running a TensorRT engine: tensor addresses + ``execute_async_v3`` on a CUDA stream.

I/O are torch CUDA tensors (``infer_torch``); ``infer`` wraps that for numpy. Batches larger than
the engine's profile are split. Each call is timed with CUDA events (``last_device_ms``: the
GPU compute of the last call, all its chunks) and synchronised, so wall-clock timing of
``infer`` is the time to a result. With ``cuda_graph=True`` the enqueue for a batch shape is
captured once into a CUDA graph and replayed (re-captured when the shape changes).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dense_edge.errors import MissingDependencyError, UserError
from dense_edge.targets.base import Runner, TimedCall
from dense_edge.targets.tensorrt import availability, compat

if TYPE_CHECKING:
    import tensorrt as trt
    import torch


ALIGNMENT = 256  # bytes: IExecutionContext.set_tensor_address needs 256-byte aligned addresses


def is_aligned(address: int) -> bool:
    return address % ALIGNMENT == 0


def misaligned_chunks(batch: int, max_batch: int, item_bytes: int) -> list[int]:
    """Indices of the chunks ``torch.split(x, max_batch)`` makes whose start is not aligned
    (``x`` itself aligned, ``item_bytes`` per image): those are copied before binding."""
    starts = range(0, batch, max_batch)
    return [i for i, first in enumerate(starts) if not is_aligned(first * item_bytes)]


class TensorRTRunner(Runner):
    name = "tensorrt"

    def __init__(
        self,
        engine: str | Path,
        manifest: dict[str, Any] | None = None,
        *,
        device: int = 0,
        cuda_graph: bool = False,
    ) -> None:
        super().__init__()
        self.engine_path = Path(engine)
        self.manifest = manifest or {}
        self.device_index = device
        self.cuda_graph = cuda_graph
        self.last_device_ms: float | None = None
        self._graph: tuple[tuple[int, ...], Any, Any, Any] | None = None

    @classmethod
    def from_bundle(cls, folder: Path, manifest: dict[str, Any]) -> TensorRTRunner:
        return cls(folder / "model.engine", manifest)

    # -- lifecycle ----------------------------------------------------------------------------
    def activate_impl(self) -> None:
        availability.load()
        import tensorrt as trt
        import torch

        if not torch.cuda.is_available():
            raise MissingDependencyError(
                "running a TensorRT engine needs a CUDA GPU; none is visible",
                fix="run it on the device it was built for",
            )
        props = torch.cuda.get_device_properties(self.device_index)
        if self.manifest:
            compat.check(
                self.manifest,
                trt_version=str(trt.__version__),
                gpu_name=props.name,
                compute_capability=f"{props.major}.{props.minor}",
            )
        self.device = torch.device("cuda", self.device_index)
        torch.cuda.set_device(self.device)  # the engine deserialises onto the current device
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        dla_core = self.manifest.get("config", {}).get("dla_core")
        if dla_core is not None:
            if self.cuda_graph:
                raise UserError(
                    "this engine runs on the DLA, which CUDA graphs cannot capture",
                    path=self.engine_path,
                    fix="run it without cuda_graph",
                )
            self.runtime.DLA_core = int(dla_core)
        engine = self.runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if engine is None:
            raise UserError(
                "TensorRT could not load the engine (built with another TensorRT version or GPU?)",
                path=self.engine_path,
                fix="rebuild it here: dense-edge compile --target tensorrt --force",
            )
        self.engine: trt.ICudaEngine = engine
        self.context: trt.IExecutionContext = engine.create_execution_context()
        self.stream = torch.cuda.Stream(device=self.device)  # type: ignore[no-untyped-call]  # untyped in torch
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise UserError(f"expected one input and one output, found {inputs} and {outputs}")
        self.input_name, self.output_name = inputs[0], outputs[0]
        self.input_dtype = _torch_dtype(engine.get_tensor_dtype(self.input_name))
        self.output_dtype = _torch_dtype(engine.get_tensor_dtype(self.output_name))
        shapes = engine.get_tensor_profile_shape(self.input_name, 0)
        self.max_batch = int(shapes[2][0])
        # A chunk that does not start on a 256-byte boundary is copied here before binding.
        top = shapes[2]
        item = [int(top[i]) for i in range(1, len(top))]
        self._staging = torch.empty(
            (self.max_batch, *item), dtype=self.input_dtype, device=self.device
        )

    def deactivate_impl(self) -> None:
        self._graph = None
        for attr in ("context", "engine", "runtime", "_staging"):
            if hasattr(self, attr):
                delattr(self, attr)

    # -- inference ----------------------------------------------------------------------------
    def infer_impl(self, images: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(images).to(self.device, non_blocking=True)
        return self.infer_torch(x).float().cpu().numpy()

    def timed_call(self, images: np.ndarray) -> TimedCall:
        """A host batch in, logits back on the host, as a device app does; the engine's own time
        is the GPU compute between the CUDA events around the enqueue (trtexec's "GPU Compute")."""
        if not self.is_active:
            raise RuntimeError(f"{self.name}: activate() the runner before timed_call()")
        x = np.ascontiguousarray(images, dtype=np.float32)
        return TimedCall(run=lambda: self.infer_impl(x), clock="TensorRT GPU compute (CUDA events)",
                         engine_seconds=lambda: (self.last_device_ms or 0.0) / 1000.0)  # fmt: skip

    def infer_torch(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a CUDA tensor batch; split into chunks the engine's profile allows."""
        import torch

        # Work queued on the caller's stream (the copy to the GPU) must finish before ours reads it.
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        outputs, gpu_ms = [], 0.0
        for chunk in torch.split(x, self.max_batch):
            out, ms = self._execute(chunk)
            outputs.append(out)
            gpu_ms += ms
        self.last_device_ms = gpu_ms  # one figure per call, however many chunks it took
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)

    def _execute(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        import torch

        start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        with torch.cuda.stream(self.stream):
            x = x.to(self.input_dtype).contiguous()
            if not is_aligned(x.data_ptr()):
                staged = self._staging[: x.shape[0]]
                staged.copy_(x)
                x = staged
            if self.cuda_graph:
                graph, static_in, static_out = self._captured(tuple(x.shape))
                static_in.copy_(x)
                start.record(self.stream)
                graph.replay()
                end.record(self.stream)
                out = static_out.clone()
            else:
                out = self._bind(x)
                start.record(self.stream)
                if not self.context.execute_async_v3(self.stream.cuda_stream):
                    raise RuntimeError("TensorRT execute_async_v3 failed")
                end.record(self.stream)
        self.stream.synchronize()
        return out, start.elapsed_time(end)

    def _bind(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        if not self.context.set_input_shape(self.input_name, tuple(x.shape)):
            raise UserError(
                f"batch shape {tuple(x.shape)} is outside the engine's optimisation profile",
                fix="rebuild with a larger targets.max_batch",
            )
        dims = self.context.get_tensor_shape(self.output_name)
        out_shape = tuple(int(dims[i]) for i in range(len(dims)))
        out = torch.empty(out_shape, dtype=self.output_dtype, device=self.device)
        for tensor in (x, out):  # the caching allocator aligns to 512 bytes; checked anyway
            if not is_aligned(tensor.data_ptr()):
                raise RuntimeError(f"tensor address {tensor.data_ptr():#x} is not 256-byte aligned")
        self.context.set_tensor_address(self.input_name, x.data_ptr())
        self.context.set_tensor_address(self.output_name, out.data_ptr())
        return out

    def _captured(self, shape: tuple[int, ...]) -> tuple[Any, torch.Tensor, torch.Tensor]:
        import torch

        if self._graph is not None and self._graph[0] == shape:
            return self._graph[1], self._graph[2], self._graph[3]
        static_in = torch.empty(shape, dtype=self.input_dtype, device=self.device)
        static_out = self._bind(static_in)
        # One plain enqueue first, so that one-time initialisation is not captured.
        self.context.execute_async_v3(self.stream.cuda_stream)
        self.stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self.stream):
            self.context.execute_async_v3(self.stream.cuda_stream)
        self._graph = (shape, graph, static_in, static_out)
        return graph, static_in, static_out

    def describe(self) -> dict[str, Any]:
        import tensorrt as trt

        return {
            "runner": self.name,
            "runtime": f"tensorrt {trt.__version__}",
            "device": str(getattr(self, "device", "cuda")),
            "precision_run": self.manifest.get("precision_run", "?"),
            "cuda_graph": self.cuda_graph,
            "dla_core": self.manifest.get("config", {}).get("dla_core"),
            "max_batch": getattr(self, "max_batch", None),
        }


def _torch_dtype(dtype: trt.DataType) -> torch.dtype:
    import tensorrt as trt
    import torch

    table = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16}
    if dtype not in table:
        raise UserError(f"engine I/O type {dtype} is not float32/float16")
    return table[dtype]
