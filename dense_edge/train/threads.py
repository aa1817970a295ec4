"""Torch's CPU thread pools for training, sized to the CPUs this process may use and their load.

Torch sizes its intra-op pool to every core it sees and its OpenMP threads spin while they wait
for work. On a machine shared with other jobs that spinning competes with the neighbours: the
quick start's 18.5 s of training took 300-780 s at load 2-8 on 2 cores. So the pools are sized to
what is free when training starts: the CPUs in this process's affinity mask (and cgroup quota)
times the share of the machine the 1-minute load average leaves idle, at least one thread;
``train.threads`` fixes the intra-op count instead. Under ``torchrun`` the processes on one node
share the CPUs. The choice and its reasons go into the training record.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from dense_edge.records import ThreadPools


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2 CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return max(1, cpus)


def _cgroup_quota() -> float | None:
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text(encoding="ascii").split()
    except OSError:
        return None
    if len(text) != 2 or text[0] == "max":
        return None
    try:
        return int(text[0]) / int(text[1])
    except (ValueError, ZeroDivisionError):
        return None


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def choose(
    requested: int | None,
    *,
    processes_per_node: int = 1,
    cpus: int | None = None,
    machine_cpus: int | None = None,
    load: float | None = None,
) -> ThreadPools:
    """The intra-op and inter-op thread counts for one training process, with why.

    ``requested`` (``train.threads``) wins. Otherwise: this process's share of the usable CPUs,
    scaled by the idle fraction of the machine (the load average over all its CPUs), rounded,
    at least 1. Inter-op is 1: training runs one operator at a time."""
    cpus = usable_cpus() if cpus is None else cpus
    machine = (os.cpu_count() or cpus) if machine_cpus is None else machine_cpus
    load = load_average() if load is None else load
    share = max(1, cpus // max(1, processes_per_node))
    if requested is not None:
        intra, why = requested, "train.threads"
    else:
        idle = 1.0 if load is None else min(1.0, max(0.0, 1.0 - load / max(1, machine)))
        intra = max(1, min(share, math.floor(share * idle + 0.5)))
        why = "auto: usable CPUs x idle share of the machine"
    return {
        "intra_op": intra,
        "inter_op": 1,
        "chosen_by": why,
        "usable_cpus": cpus,
        "machine_cpus": machine,
        "load_1min": None if load is None else round(load, 2),
        "processes_per_node": processes_per_node,
    }


def apply(choice: ThreadPools) -> ThreadPools:
    """Set torch's pools to ``choice``; returns it with the counts torch actually has.

    The inter-op pool can only be sized before torch first uses it (once per process): where it
    is too late the record says what torch kept."""
    import torch

    torch.set_num_threads(int(choice["intra_op"]))
    try:
        torch.set_num_interop_threads(int(choice["inter_op"]))
    except RuntimeError:  # already started in this process
        pass
    return {**choice, "intra_op": torch.get_num_threads(),
            "inter_op": torch.get_num_interop_threads()}  # fmt: skip
