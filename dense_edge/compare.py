"""The comparator: judges a candidate's outputs against a reference's with explicit tolerances.

It knows nothing of how either output was produced (PyTorch, an ONNX file, an engine), so export
parity, calibration checks and validation all judge models the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Agreement:
    samples: int
    max_abs_error: float
    mean_abs_error: float
    cosine: float  # mean over samples of the cosine similarity of the two logit vectors
    min_cosine: float
    top1_agreement: float  # fraction of samples whose arg-max is the same

    def to_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 8) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def agreement(reference: np.ndarray, candidate: np.ndarray) -> Agreement:
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if ref.shape != cand.shape:
        raise ValueError(f"shape mismatch: reference {ref.shape}, candidate {cand.shape}")
    ref = ref.reshape(len(ref), -1)
    cand = cand.reshape(len(cand), -1)
    diff = np.abs(ref - cand)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1)
    cos = np.where(norms > 0, (ref * cand).sum(1) / np.maximum(norms, 1e-300), 1.0)
    return Agreement(
        samples=len(ref),
        max_abs_error=float(diff.max()) if diff.size else 0.0,
        mean_abs_error=float(diff.mean()) if diff.size else 0.0,
        cosine=float(cos.mean()) if cos.size else 1.0,
        min_cosine=float(cos.min()) if cos.size else 1.0,
        top1_agreement=float((ref.argmax(1) == cand.argmax(1)).mean()) if len(ref) else 1.0,
    )


@dataclass(frozen=True)
class Tolerance:
    max_abs_error: float | None = None
    min_cosine: float | None = None
    min_top1_agreement: float | None = None

    def violations(self, a: Agreement) -> list[str]:
        out = []
        if self.max_abs_error is not None and a.max_abs_error > self.max_abs_error:
            out.append(f"max abs error {a.max_abs_error:.3g} > {self.max_abs_error:.3g}")
        if self.min_cosine is not None and a.min_cosine < self.min_cosine:
            out.append(f"cosine {a.min_cosine:.6f} < {self.min_cosine}")
        if self.min_top1_agreement is not None and a.top1_agreement < self.min_top1_agreement:
            out.append(f"top-1 agreement {a.top1_agreement:.4f} < {self.min_top1_agreement}")
        return out
