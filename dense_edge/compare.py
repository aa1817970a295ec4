"""The comparator: judges a candidate's outputs against a reference's with explicit tolerances.

It knows nothing of how either output was produced (PyTorch, an ONNX file, an engine), so export
parity, calibration checks and validation all judge models the same way. Top-1 agreement is
:func:`dense_edge.accuracy.agreeing`'s, the one definition; this module adds the logit errors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from dense_edge.accuracy import agreeing


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


CHUNK_VALUES = 1 << 20  # values per row chunk: the float64 temporaries stay ~40 MB whatever N is


def agreement(reference: np.ndarray, candidate: np.ndarray) -> Agreement:
    """The two outputs compared row by row, a chunk of rows at a time: at 50,000 images of
    1000 classes the whole-array float64 temporaries would be 400 MB each."""
    if np.shape(reference) != np.shape(candidate):
        raise ValueError(
            f"shape mismatch: reference {np.shape(reference)}, candidate {np.shape(candidate)}"
        )
    n = len(reference)
    if n == 0:
        return Agreement(0, 0.0, 0.0, 1.0, 1.0, 1.0)
    width = max(1, int(np.prod(np.shape(reference)[1:])))
    step = max(1, CHUNK_VALUES // width)
    max_abs, abs_sum, agree = 0.0, 0.0, 0
    cos = np.empty(n, dtype=np.float64)
    for i in range(0, n, step):
        ref = np.asarray(reference[i : i + step], dtype=np.float64).reshape(-1, width)
        cand = np.asarray(candidate[i : i + step], dtype=np.float64).reshape(-1, width)
        diff = np.abs(ref - cand)
        max_abs = max(max_abs, float(diff.max()))
        abs_sum += float(diff.sum())
        norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1)
        dots = np.einsum("ij,ij->i", ref, cand)
        cos[i : i + len(ref)] = np.where(norms > 0, dots / np.maximum(norms, 1e-300), 1.0)
        agree += agreeing(ref, cand)
    return Agreement(
        samples=n,
        max_abs_error=max_abs,
        mean_abs_error=abs_sum / (n * width),
        cosine=float(cos.mean()),
        min_cosine=float(cos.min()),
        top1_agreement=agree / n,
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
