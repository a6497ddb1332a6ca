"""An exponential moving average (EMA) of a model's weights, updated after every optimizer step.

The rule is timm's `ModelEmaV3.update(model, step=n)` (timm/utils/model_ema.py): the n-th update
(n = 1, 2, ...) sets every floating tensor of the state dict to `d_n * ema + (1 - d_n) * model`,
where d_1 = 0 (the first update copies the model) and, from n = 2, d_n = `decay`, or, with the
warmup, min(decay, 1 - n^-power) (timm's `1 - (1 + (n - 1) / gamma)^-power` with gamma = 1):
early on the average forgets the random initialisation quickly. Floating buffers (BatchNorm
running mean and variance) are averaged like the weights (`buffers="average"`, timm's default)
or copied (`"copy"`, timm's `exclude_buffers=True`); integer buffers (`num_batches_tracked`) are
always copied.

Under DDP the average is of the unwrapped model. Its parameters are the same on every rank (DDP
keeps the weights equal), and so are its buffers with SyncBatchNorm; without it each rank's
BatchNorm statistics differ, so `synchronize()` (called before each evaluation) broadcasts rank
0's averaged buffers, which is what rank 0 saves.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from . import distributed as dist_utils


def ema_decay(update: int, *, decay: float, warmup: bool, warmup_power: float) -> float:
    """d_n of the n-th update (1-based): 0 for the first, then `decay` or its warmup."""
    if update <= 1:
        return 0.0
    if not warmup:
        return decay
    return max(0.0, min(decay, 1.0 - update ** -warmup_power))


def copy_model(model: nn.Module) -> nn.Module:
    """A deep copy sharing the model's process groups (CPU SyncBatchNorm holds one; they cannot be copied)."""
    memo: dict[int, Any] = {}
    if torch.distributed.is_available():
        for module in model.modules():
            for value in vars(module).values():
                if isinstance(value, torch.distributed.ProcessGroup):
                    memo[id(value)] = value
    return copy.deepcopy(model, memo)


class ModelEma:
    """The averaged copy (`module`, eval mode, no gradients) of a model and its update count."""

    def __init__(self, model: nn.Module, *, decay: float = 0.9998, warmup: bool = True, warmup_power: float = 0.75,
                 buffers: str = "average"):
        if buffers not in ("average", "copy"):
            raise ValueError(f"EMA buffers must be 'average' or 'copy', got {buffers!r}")
        self.module = copy_model(model).eval()
        for param in self.module.parameters():
            param.requires_grad_(False)
        self.decay, self.warmup, self.warmup_power, self.buffers = decay, warmup, warmup_power, buffers
        self.updates = 0
        self._buffer_names = {name for name, _ in self.module.named_buffers()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> float:
        """Fold `model` (unwrapped, same architecture) into the average; returns the decay used."""
        self.updates += 1
        decay = ema_decay(self.updates, decay=self.decay, warmup=self.warmup, warmup_power=self.warmup_power)
        current = model.state_dict()
        averaged, targets, copies = [], [], []
        for name, ema_value in self.module.state_dict().items():
            value = current[name].detach()
            if ema_value.is_floating_point() and not (self.buffers == "copy" and name in self._buffer_names):
                averaged.append(ema_value)
                targets.append(value.to(ema_value.dtype))
            else:
                copies.append((ema_value, value))
        if averaged:
            torch._foreach_lerp_(averaged, targets, weight=1.0 - decay)
        for ema_value, value in copies:
            ema_value.copy_(value)
        return decay

    @torch.no_grad()
    def synchronize(self) -> None:
        """Rank 0's buffers on every rank (no-op in one process); parameters are equal already."""
        if not dist_utils.is_distributed():
            return
        buffers = [b for b in self.module.buffers() if b.is_floating_point()]
        if buffers:
            flat = torch.cat([b.reshape(-1) for b in buffers])
            torch.distributed.broadcast(flat, src=0)
            for part, buffer in zip(flat.split([b.numel() for b in buffers]), buffers):
                buffer.copy_(part.view_as(buffer))

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates, "decay": self.decay, "warmup": self.warmup,
                "warmup_power": self.warmup_power, "buffers": self.buffers}

    def load(self, weights: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
        """The averaged weights and the update count of a checkpoint (the rule stays this run's)."""
        self.module.load_state_dict(weights)
        self.updates = int(state["updates"])
