"""Peak training memory of densenet121 (batch 32, 224x224, CPU): plain vs memory-efficient.

Each mode runs in its own process; the figure is the growth of the process's peak resident set
over one training step (forward + backward + SGD), above what the model alone takes.

    python bench/memory_efficient.py [--batch 32] [--size 224] [--steps 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
sys.path.insert(0, {root!r})
import torch
from dense_edge import models
torch.manual_seed(0)
model = models.create("densenet121", memory_efficient={efficient}).train()
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
x = torch.randn({batch}, 3, {size}, {size})
y = torch.randint(0, 1000, ({batch},))
def hwm():  # VmHWM: ru_maxrss would carry the parent's peak across exec
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
base = hwm()
times = []
for _ in range({steps}):
    t0 = time.perf_counter()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    times.append(time.perf_counter() - t0)
peak = hwm()
step = sorted(times)[len(times) // 2]
print(json.dumps({{"base_mib": base / 1024, "peak_mib": peak / 1024, "step_s": step}}))
"""


def run(efficient: bool, batch: int, size: int, steps: int) -> dict[str, float]:
    code = CHILD.format(root=str(ROOT), efficient=efficient, batch=batch, size=size, steps=steps)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=1)
    a = ap.parse_args()
    plain = run(False, a.batch, a.size, a.steps)
    eff = run(True, a.batch, a.size, a.steps)
    print(f"densenet121 training step, batch {a.batch}, {a.size}x{a.size}, CPU")
    print(f"{'mode':<18}{'peak RSS MiB':>14}{'step growth MiB':>17}{'step s (median)':>17}")
    for name, r in (("plain", plain), ("memory-efficient", eff)):
        growth = r["peak_mib"] - r["base_mib"]
        print(f"{name:<18}{r['peak_mib']:>14.0f}{growth:>17.0f}{r['step_s']:>17.2f}")
    ratio = (eff["peak_mib"] - eff["base_mib"]) / (plain["peak_mib"] - plain["base_mib"])
    print(
        f"memory-efficient / plain step memory: {ratio:.2f}x  "
        f"(time {eff['step_s'] / plain['step_s']:.2f}x)"
    )


if __name__ == "__main__":
    main()
