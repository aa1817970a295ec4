"""Running an OpenVINO engine bundle."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dense_edge import ovcore
from dense_edge.errors import UserError
from dense_edge.targets.base import Runner, RunnerDescription, TimedCall
from dense_edge.targets.openvino import util

if TYPE_CHECKING:
    from dense_edge.manifest import EngineManifest

# Batch sizes a runner compiles a static-shape model for (the first ones it sees); beyond them it
# runs the bundle's dynamic-batch model.
STATIC_BATCHES = 4


class OpenVinoRunner(Runner):
    """Runs an OpenVINO IR. A bundle's IR keeps a dynamic batch dimension; the CPU plugin runs a
    model whose shapes are all known markedly faster (densenet121 int8 on a Xeon with AMX: 4.2
    against 6.4 ms at batch 1, 25 against 28 ms at batch 8, benchmark_app's static and dynamic
    figures), so the runner compiles the model reshaped to each batch size it is asked for, once,
    on the first call of that size (about 0.6 s for densenet121), and keeps it."""

    name = "openvino"
    thread_safe = True  # one infer request per thread (see _request)

    def __init__(
        self,
        model: str | Path,
        *,
        device: str = "CPU",
        config: dict[str, str | int] | None = None,
        static_batches: int = STATIC_BATCHES,
    ) -> None:
        super().__init__()
        self.model = Path(model)
        self.device = device
        self.config = dict(config or {})
        self.compiled: Any = None  # the bundle's model as it is (dynamic batch)
        self.static_batches = static_batches  # 0: always the bundle's dynamic model
        self._static: dict[int, Any] = {}  # batch size -> the model compiled for it
        self._lock = threading.Lock()
        self._local = threading.local()
        self._timed: list[tuple[object, ...]] = []  # every timed call's buffers: see timed_call

    @classmethod
    def from_bundle(cls, folder: Path, manifest: EngineManifest) -> OpenVinoRunner:
        return cls(folder / "model.xml", device=manifest.get("device", "CPU"),
                   config=manifest.get("config"))  # fmt: skip

    def activate_impl(self) -> None:

        core = ovcore.core()
        util.check_device(core, self.device)
        try:
            self.compiled = core.compile_model(str(self.model), self.device, self.config)
        except RuntimeError as exc:
            raise UserError(
                f"OpenVINO cannot load the engine ({str(exc).splitlines()[0][:200]})",
                path=self.model,
                fix="rebuild it with dense-edge compile --force",
            ) from None

    def compiled_for(self, batch: int) -> Any:
        """The compiled model that runs ``batch`` images: one of static shape when the bundle's
        batch dimension is dynamic (compiled on first use, up to ``static_batches`` sizes), else
        the bundle's own."""
        with self._lock:
            got = self._static.get(batch)
            if got is not None:
                return got
            dims = list(self.compiled.input(0).get_partial_shape())
            if (not dims[0].is_dynamic or any(d.is_dynamic for d in dims[1:])
                    or len(self._static) >= self.static_batches):  # fmt: skip
                return self.compiled
            model = ovcore.core().read_model(str(self.model))
            try:
                model.reshape({0: [batch, *(d.get_length() for d in dims[1:])]})
                got = ovcore.core().compile_model(model, self.device, self.config)
            except RuntimeError:  # a graph OpenVINO cannot reshape: it runs as it was built
                got = self.compiled
            self._static[batch] = got
            return got

    def _request(self, batch: int) -> Any:
        # One infer request per thread and compiled model: a request is not safe to share
        # between threads.
        requests = getattr(self._local, "requests", None)
        if requests is None:
            requests = self._local.requests = {}
        compiled = self.compiled_for(batch)
        req = requests.get(id(compiled))
        if req is None:
            req = requests[id(compiled)] = compiled.create_infer_request()
        return req

    def infer_impl(self, images: np.ndarray) -> np.ndarray:
        req = self._request(len(images))
        req.infer({0: images})
        return np.array(req.get_output_tensor(0).data, copy=True)

    def timed_call(self, images: np.ndarray) -> TimedCall:
        """An infer request of its own whose input tensor shares ``images``' memory.

        ``infer`` runs synchronously on the tensors already set, in the calling thread, and shares
        its outputs rather than copying them. The request's ``latency`` is OpenVINO's own clock
        around that inference, the figure ``benchmark_app`` reports, so the harness quotes it
        rather than its own clock, which adds Python's call overhead (about 10 us a call here).

        A shared-memory tensor does not keep its array alive once set on a request (only the
        Python ``Tensor`` does, and it is gone on return): ``run`` closes over the array and the
        tensor, so OpenVINO never reads an input freed under it.
        """
        import openvino as ov

        x = np.ascontiguousarray(images, dtype=np.float32)
        tensor = ov.Tensor(x, shared_memory=True)
        req = self.compiled_for(len(x)).create_infer_request()
        req.set_input_tensor(tensor)

        # ``_bound``: the closure itself holds the shared input, at no cost per call
        def run(_bound: tuple[object, object] = (x, tensor)) -> None:
            req.infer(share_outputs=True)

        def output() -> np.ndarray:
            data: np.ndarray = req.get_output_tensor(0).data
            return data

        # The CPU plugin keeps pointing at a shared input after its request is gone: a later
        # inference of the same shape on another request of this compiled model wrote into the
        # freed array (a segmentation fault in validate at batch 8 after timing batch 8). The
        # buffers live as long as the compiled model, not the call.
        self._timed.append((x, tensor, req))
        return TimedCall(run=run, output=output, clock="OpenVINO InferRequest.latency",
                         engine_seconds=lambda: req.latency / 1000.0,
                         buffers=(x, tensor))  # fmt: skip

    def deactivate_impl(self) -> None:
        self.compiled = None
        self._static = {}
        self._local = threading.local()
        self._timed = []  # after the compiled model: nothing reads them any more

    def describe(self) -> RunnerDescription:
        import openvino as ov

        out: RunnerDescription = {"runner": self.name, "runtime": f"openvino {ov.get_version()}",
                               "device": self.device, "config": self.config}  # fmt: skip
        if self.compiled is not None:
            table = util.runtime_precisions(self.compiled)
            out["precision_run"] = util.main_precision(table)
            out["threads"] = self.compiled.get_property("INFERENCE_NUM_THREADS")
        return out
