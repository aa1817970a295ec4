"""Data parallel training under ``torchrun``: gloo on CPU, NCCL on CUDA."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.size > 1


def from_env() -> World:
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))


def init(world: World, device: torch.device) -> None:
    if not world.enabled or torch.distributed.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    torch.distributed.init_process_group(backend=backend, rank=world.rank, world_size=world.size)


def processes_per_node(world: World) -> int:
    """Training processes sharing this machine's CPUs (``torchrun``'s LOCAL_WORLD_SIZE)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", world.size)) if world.enabled else 1


def barrier(world: World) -> None:
    if world.enabled and torch.distributed.is_initialized():
        torch.distributed.barrier()


def all_reduce_mean(value: float, world: World) -> float:
    if not world.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    torch.distributed.all_reduce(t)
    return float(t.item()) / world.size


def shutdown(world: World) -> None:
    if world.enabled and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
