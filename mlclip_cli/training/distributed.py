"""Use torch.distributed when launched by torchrun; otherwise a single process.

No home-made distribution: torchrun starts the processes, DDP averages gradients, and a global
batch's embeddings are shared with torch.distributed's autograd-aware all_gather, so every rank
computes the loss of the whole global batch (in-batch InfoNCE keeps all its negatives) and the
weights equal a single process's on the same global batch, up to float rounding.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Runtime:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str | None = None) -> Runtime:
    """Join torchrun's process group if there is one; pick the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if world_size > 1:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device == "cuda":
            torch.cuda.set_device(local_rank)
            device = f"cuda:{local_rank}"
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    return Runtime(rank=rank, world_size=world_size, device=torch.device(device))


def current(device: str | None = None) -> Runtime:
    """The runtime of a process group someone already joined, or a single process on `device`."""
    if dist.is_initialized():
        return setup(device)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return Runtime(rank=0, world_size=1, device=torch.device(device))


@contextlib.contextmanager
def session(device: str | None = None):
    """setup() ... teardown(), tearing down only a group this call joined (a caller's stays)."""
    joined_here = not dist.is_initialized()
    runtime = setup(device)
    try:
        yield runtime
    finally:
        if joined_here:
            teardown()


def wrap(model: torch.nn.Module, runtime: Runtime, find_unused_parameters: bool = False) -> torch.nn.Module:
    if runtime.world_size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [runtime.device.index] if runtime.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused_parameters)


def no_sync(model: torch.nn.Module):
    """Skip DDP's gradient all-reduce (the micro-batches of gradient accumulation but the last)."""
    return model.no_sync() if hasattr(model, "no_sync") else contextlib.nullcontext()


def local_part(rows: np.ndarray, runtime: Runtime) -> tuple[np.ndarray, list[int]]:
    """This rank's contiguous share of a global batch, and every rank's share size."""
    parts = np.array_split(rows, runtime.world_size)
    return parts[runtime.rank], [len(part) for part in parts]


def gather_rows(local: torch.Tensor, sizes: list[int], runtime: Runtime) -> torch.Tensor:
    """The global batch from each rank's rows, in rank order, with gradients flowing back to the
    rank that computed them. Shares may differ by one row: they are padded to one size to gather."""
    if runtime.world_size == 1:
        return local
    from torch.distributed.nn.functional import all_gather

    longest = max(sizes)
    padded = torch.cat([local, local.new_zeros(longest - len(local), *local.shape[1:])]) if len(local) < longest else local
    with warnings.catch_warnings():  # its successor's backward needs reduce_scatter, which gloo lacks
        warnings.simplefilter("ignore", FutureWarning)
        parts = all_gather(padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes)])


def autocast(device: torch.device):
    """bfloat16 mixed precision on a GPU; full precision on a CPU (bf16 matmuls are slow there)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def seed(value: int, runtime: Runtime) -> None:
    """Per-rank randomness during training (initialisation is broadcast from rank 0 by DDP)."""
    torch.manual_seed(value * 1000 + runtime.rank)


def any_rank(flag: bool, runtime: Runtime) -> bool:
    """Whether `flag` holds on any rank (all ranks must stop at the same step, or a collective hangs)."""
    if not runtime.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=runtime.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def teardown() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
