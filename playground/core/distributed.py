"""Data-parallel training under ``torchrun`` (DDP), with no cluster code of our own.

``torchrun --nproc_per_node=N -m playground.cli run RECIPE`` starts N processes with
``RANK``/``WORLD_SIZE`` set. :func:`init_from_env` joins them into a process group (gloo on
CPU, NCCL on CUDA); :func:`~playground.core.training.fit` then wraps the model in
``DistributedDataParallel``, each rank trains on its own shard of every epoch's shuffled
order, and only rank 0 writes the run directory. Without torchrun all of this is a no-op.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    return rank() == 0


def init_from_env() -> bool:
    """Join the process group torchrun describes; ``False`` when not launched by torchrun."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    use_cuda = torch.cuda.is_available() and os.environ.get("PLAYGROUND_DEVICE", "auto") in ("auto", "cuda")
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return True


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` in ``DistributedDataParallel`` when a process group is up, else itself."""
    if world_size() == 1:
        return model
    ids = (
        [device.index if device.index is not None else torch.cuda.current_device()]
        if device.type == "cuda"
        else None
    )
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def sum_across_ranks(*values: float) -> list[float]:
    """Element-wise sum of ``values`` over every rank (identity without a process group)."""
    if world_size() == 1:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.tolist()
