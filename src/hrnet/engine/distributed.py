"""Processes, devices, samplers and reductions; everything is a no-op in a single process.

A process group exists only under `torchrun` (WORLD_SIZE > 1): gloo on CPU, nccl on CUDA.
Helpers task authors use in their evaluators: `all_reduce_sum`, `all_gather_objects`,
`is_main_process`, `world_size`.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main_process() -> bool:
    return rank() == 0


def resolve_device(name: str) -> torch.device:
    """"auto" -> cuda (this process's local GPU under torchrun) when available, else cpu."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("train.device is cuda but no CUDA device is available; use --set train.device=cpu")
        torch.cuda.set_device(device)
    return device


def setup(device: torch.device) -> bool:
    """Start the process group when launched by torchrun with more than one process.

    Returns True when this call created it (and `teardown` should destroy it)."""
    if is_distributed() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs: dict[str, Any] = {"backend": backend}
    if device.type == "cuda":
        kwargs["device_id"] = device
    dist.init_process_group(**kwargs)
    return True


def teardown(created: bool) -> None:
    if created and is_distributed():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum across processes, in place (returns the tensor); no-op in a single process."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_objects(obj: Any) -> list[Any]:
    """Every process's `obj`, in rank order ([obj] in a single process)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


# ----------------------------------------------------------------------------- samplers


class EpochSampler(Sampler):
    """Yields (epoch, index) pairs, so that a dataset (see `SeededDataset`) can seed each sample
    from (seed, epoch, index): augmentations then do not depend on workers, ranks or restarts.

    Training: the permutation of `torch.utils.data.DistributedSampler` (seed + epoch), this rank's
    share, `skip` first samples dropped (a run resumed mid-epoch). Evaluation (shuffle=False):
    indices rank, rank + world, ... without the padding DistributedSampler adds, so metrics
    summed over ranks count every sample exactly once.
    """

    def __init__(self, length: int, *, shuffle: bool, seed: int = 0, drop_last: bool = False):
        self.length = length
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.world = world_size()
        self.rank = rank()
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch = epoch
        self.skip = skip

    def _indices(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.rank, self.length, self.world))
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        indices = torch.randperm(self.length, generator=generator).tolist()
        if self.drop_last:
            total = self.length - self.length % self.world
        else:
            total = -(-self.length // self.world) * self.world
            indices += indices[: total - len(indices)]
        return indices[:total][self.rank:total:self.world]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in self._indices()[self.skip:]:
            yield self.epoch, index

    def __len__(self) -> int:
        return max(0, len(self._indices()) - self.skip)


class SeededDataset(torch.utils.data.Dataset):
    """Wraps a task's dataset: item (epoch, i) is dataset[i] with python, numpy and torch RNGs
    seeded from (seed, epoch, i), the caller's RNG states left untouched."""

    def __init__(self, dataset: Any, seed: int):
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int] | int) -> Any:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        import random

        import numpy as np

        sample_seed = (self.seed * 1_000_003 + epoch * 7_919 + index * 104_729) % (2**31)
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(sample_seed)
                random.seed(sample_seed)
                np.random.seed(sample_seed)
                return self.dataset[index]
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


# ----------------------------------------------------------------------------- SyncBatchNorm


class _SyncBatchNormFunction(torch.autograd.Function):
    """BatchNorm over the batches of all processes: forward sums (x, x^2, count), backward sums
    (dy, dy * xhat) across ranks, as torch's CUDA SyncBatchNorm does. Reductions run in float64;
    the weight and bias gradients stay local (DDP averages them)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps, group):  # type: ignore[override]
        dims = (0, 2, 3)
        xd = x.double()
        stats = torch.cat([xd.sum(dims), (xd * xd).sum(dims),
                           torch.tensor([x.numel() / x.shape[1]], dtype=torch.float64, device=x.device)])
        dist.all_reduce(stats, op=dist.ReduceOp.SUM, group=group)
        channels = x.shape[1]
        count = stats[-1]
        mean = stats[:channels] / count
        var = (stats[channels:2 * channels] / count - mean * mean).clamp(min=0)
        invstd = torch.rsqrt(var + eps)
        xhat = (xd - mean[None, :, None, None]) * invstd[None, :, None, None]
        y = xhat * weight.double()[None, :, None, None] + bias.double()[None, :, None, None] \
            if weight is not None else xhat
        ctx.save_for_backward(xhat, weight, invstd)
        ctx.group, ctx.count = group, count
        ctx.has_affine = weight is not None
        return y.to(x.dtype), mean, var, count

    @staticmethod
    def backward(ctx, grad, *unused):  # type: ignore[override]
        xhat, weight, invstd = ctx.saved_tensors
        dims = (0, 2, 3)
        gd = grad.double()
        local = torch.cat([gd.sum(dims), (gd * xhat).sum(dims)])
        grad_weight = local[xhat.shape[1]:].to(weight.dtype) if ctx.has_affine else None
        grad_bias = local[:xhat.shape[1]].to(weight.dtype) if ctx.has_affine else None
        total = local.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=ctx.group)
        channels = xhat.shape[1]
        mean_dy, mean_dy_xhat = total[:channels] / ctx.count, total[channels:] / ctx.count
        scale = invstd * (weight.double() if ctx.has_affine else 1.0)
        grad_x = (gd - mean_dy[None, :, None, None] - xhat * mean_dy_xhat[None, :, None, None]) \
            * scale[None, :, None, None]
        return grad_x.to(grad.dtype), grad_weight, grad_bias, None, None


class _CpuSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm over the whole global batch for CPU processes (gloo): torch's SyncBatchNorm only
    runs on GPUs. Its collectives use a process group of their own, so that they never interleave
    with DDP's asynchronous gradient reductions."""

    group: Any = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        y, mean, var, count = _SyncBatchNormFunction.apply(x, self.weight, self.bias, self.eps, self.group)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var * (count / (count - 1).clamp(min=1))
                self.running_mean.mul_(1 - momentum).add_(mean.to(self.running_mean.dtype), alpha=momentum)
                self.running_var.mul_(1 - momentum).add_(unbiased.to(self.running_var.dtype), alpha=momentum)
        return y


def convert_sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm -> SyncBatchNorm (torch's on CUDA, a CPU one on CPU); call only when world > 1."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    group = dist.new_group(backend="gloo")

    def convert(module: nn.Module) -> nn.Module:
        if type(module) is nn.BatchNorm2d:
            new = _CpuSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                    module.track_running_stats)
            reference = module.running_mean if module.running_mean is not None else module.weight
            if reference is not None:  # keep the dtype and device (a float64 model stays float64)
                new.to(device=reference.device, dtype=reference.dtype)
            new.load_state_dict(module.state_dict())
            new.train(module.training)
            new.group = group
            return new
        for name, child in module.named_children():
            module.add_module(name, convert(child))
        return module

    return convert(model)
