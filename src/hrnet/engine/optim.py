"""Optimizers (SGD with Nesterov momentum, Adam, AdamW) and per-iteration learning-rate schedules."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .config import OptimizerConfig, ScheduleConfig


def parameter_groups(model: nn.Module, config: OptimizerConfig,
                     head_prefixes: Sequence[str] = ("head.",)) -> list[dict]:
    """Trainable parameters split into backbone / head groups (head: lr * head_lr_mult), and,
    with `no_decay_norm_bias`, BatchNorm weights and biases without weight decay."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        name = name.removeprefix("module.")
        is_head = name.startswith(tuple(head_prefixes))
        decay = not (config.no_decay_norm_bias and param.ndim <= 1)
        groups.setdefault((is_head, decay), []).append(param)
    out = []
    for (is_head, decay), params in sorted(groups.items()):
        mult = config.head_lr_mult if is_head else 1.0
        out.append({"params": params, "lr": config.lr * mult, "lr_mult": mult,
                    "weight_decay": config.weight_decay if decay else 0.0,
                    "name": ("head" if is_head else "backbone") + ("" if decay else "_no_decay")})
    if not out:
        raise ValueError("the model has no trainable parameters")
    return out


def build_optimizer(model: nn.Module, config: OptimizerConfig,
                    head_prefixes: Sequence[str] = ("head.",)) -> torch.optim.Optimizer:
    groups = parameter_groups(model, config, head_prefixes)
    if config.name == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum,
                               nesterov=config.nesterov and config.momentum > 0, weight_decay=config.weight_decay)
    if config.name == "adam":
        return torch.optim.Adam(groups, lr=config.lr, betas=config.betas, eps=config.eps,
                                weight_decay=config.weight_decay)
    if config.name == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps,
                                 weight_decay=config.weight_decay)
    raise ValueError(f"optimizer.name {config.name!r}: choose sgd, adam or adamw")


class LRFactor:
    """The multiplier of the base learning rate at iteration `it` (a picklable callable). The
    schedule runs over `total_iters` (a time budget's planned steps), else `epochs` epochs."""

    def __init__(self, config: ScheduleConfig, iters_per_epoch: int, epochs: int, total_iters: int | None = None):
        self.name = config.name
        self.iters_per_epoch = max(1, iters_per_epoch)
        self.total = max(1, total_iters if total_iters is not None else iters_per_epoch * epochs)
        self.milestones = sorted(int(m) * self.iters_per_epoch for m in config.milestones)
        self.gamma = config.gamma
        self.power = config.power
        self.min_factor = config.min_lr
        self.warmup = config.warmup_iters or int(round(config.warmup_epochs * self.iters_per_epoch))
        self.warmup_factor = config.warmup_factor

    def __call__(self, it: int) -> float:
        if self.name == "multistep":
            factor = self.gamma ** sum(it >= m for m in self.milestones)
        elif self.name == "poly":
            factor = max(0.0, 1.0 - it / self.total) ** self.power
        elif self.name == "cosine":
            t = min(it, self.total) / self.total
            factor = self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * t))
        else:
            factor = 1.0
        if it < self.warmup:
            alpha = it / self.warmup
            factor *= self.warmup_factor * (1.0 - alpha) + alpha
        return factor


def build_scheduler(optimizer: torch.optim.Optimizer, config: ScheduleConfig, iters_per_epoch: int,
                    epochs: int, total_iters: int | None = None) -> torch.optim.lr_scheduler.LambdaLR:
    """Stepped once per optimizer step, over `total_iters` steps when given (else epochs x
    iters_per_epoch). `min_lr` of cosine is relative to each group's base lr divided by the base
    lr (i.e. min_lr / optimizer.lr is the floor factor)."""
    factor = LRFactor(config, iters_per_epoch, epochs, total_iters)
    base = optimizer.param_groups[0]["lr"] / optimizer.param_groups[0].get("lr_mult", 1.0)
    factor.min_factor = config.min_lr / base if base > 0 else 0.0
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
