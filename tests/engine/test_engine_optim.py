"""Optimizers (weight decay really reaches them), head lr multiplier, schedules with warmup."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hrnet.engine import load_config
from hrnet.engine.config import OptimizerConfig, ScheduleConfig
from hrnet.engine.optim import build_optimizer, build_scheduler
from hrnet.engine.testing import tiny_classification_recipe, write_recipe


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(3, 3)
        self.head = nn.Linear(3, 2)


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_weight_decay_reaches_the_optimizer(tmp_path, name):
    recipe = tiny_classification_recipe(optimizer={"name": name, "weight_decay": 0.05, "lr": 0.1})
    config = load_config(write_recipe(tmp_path / "r.yaml", recipe))
    model = Toy()
    optimizer = build_optimizer(model, config.optimizer)
    assert type(optimizer).__name__ == {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}[name]
    assert all(group["weight_decay"] == 0.05 for group in optimizer.param_groups)
    if name == "sgd":
        assert all(group["nesterov"] and group["momentum"] == 0.9 for group in optimizer.param_groups)
    # With a zero gradient only the decay moves the weights, towards zero.
    before = model.head.weight.detach().clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    step = model.head.weight.detach() - before
    assert (step * before < 0).all()
    # Without decay nothing moves.
    model2 = Toy()
    optimizer2 = build_optimizer(model2, OptimizerConfig(name=name, lr=0.1, weight_decay=0.0))
    before2 = model2.head.weight.detach().clone()
    for p in model2.parameters():
        p.grad = torch.zeros_like(p)
    optimizer2.step()
    assert torch.equal(before2, model2.head.weight.detach())


def test_head_lr_multiplier_and_no_decay_groups():
    model = Toy()
    optimizer = build_optimizer(model, OptimizerConfig(lr=0.01, head_lr_mult=10.0, no_decay_norm_bias=True))
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert groups["head"]["lr"] == pytest.approx(0.1) and groups["backbone"]["lr"] == pytest.approx(0.01)
    assert groups["head_no_decay"]["weight_decay"] == 0.0 and groups["head"]["weight_decay"] == 1e-4
    assert [p.shape for p in groups["head"]["params"]] == [model.head.weight.shape]
    scheduler = build_scheduler(optimizer, ScheduleConfig(name="multistep", milestones=[1], gamma=0.5), 2, 3)
    for _ in range(2):
        optimizer.step()
        scheduler.step()
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert groups["head"]["lr"] == pytest.approx(0.05) and groups["backbone"]["lr"] == pytest.approx(0.005)


def _lrs(config: ScheduleConfig, iters_per_epoch: int, epochs: int, lr: float = 1.0) -> list[float]:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = build_scheduler(optimizer, config, iters_per_epoch, epochs)
    out = []
    for _ in range(iters_per_epoch * epochs):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_multistep_steps_at_epoch_milestones():
    lrs = _lrs(ScheduleConfig(name="multistep", milestones=[2, 3], gamma=0.1), iters_per_epoch=4, epochs=4)
    assert lrs[:8] == [1.0] * 8
    assert lrs[8:12] == pytest.approx([0.1] * 4) and lrs[12:] == pytest.approx([0.01] * 4)


def test_poly_is_per_iteration():
    lrs = _lrs(ScheduleConfig(name="poly", power=0.9), iters_per_epoch=5, epochs=2)
    assert lrs == pytest.approx([(1 - i / 10) ** 0.9 for i in range(10)])
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


def test_cosine_down_to_min_lr():
    lrs = _lrs(ScheduleConfig(name="cosine", min_lr=0.01), iters_per_epoch=10, epochs=1, lr=0.1)
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[5] == pytest.approx(0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert min(lrs) > 0.01


@pytest.mark.parametrize("name", ["multistep", "poly", "cosine"])
def test_linear_warmup(name):
    lrs = _lrs(ScheduleConfig(name=name, warmup_epochs=1, warmup_factor=0.1, milestones=[5]), iters_per_epoch=4,
               epochs=3)
    plain = _lrs(ScheduleConfig(name=name, milestones=[5]), iters_per_epoch=4, epochs=3)
    assert lrs[0] == pytest.approx(0.1 * plain[0])
    assert lrs[2] == pytest.approx((0.1 * 0.5 + 0.5) * plain[2])
    assert lrs[4:] == pytest.approx(plain[4:])
    assert all(a < b for a, b in zip(lrs[:4], lrs[1:5])) or name != "multistep"


def test_warmup_in_iterations_as_mmdetection_linear_warmup():
    """HRNet-Object-Detection (mmdetection v1) `warmup='linear', warmup_iters=500, warmup_ratio=1/3`:
    lr_t = lr * (1 - (1 - ratio) * (1 - t / 500)) for t < 500. Here over 5 iterations of a 3-iteration epoch."""
    ratio = 1 / 3
    lrs = _lrs(ScheduleConfig(name="multistep", milestones=[10], warmup_iters=5, warmup_factor=ratio),
               iters_per_epoch=3, epochs=3)
    assert lrs[:5] == pytest.approx([1 - (1 - ratio) * (1 - t / 5) for t in range(5)])
    assert lrs[5:] == pytest.approx([1.0] * 4)


def test_warmup_in_epochs_and_iterations_together_is_refused():
    from hrnet.engine.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError, match="warmup_epochs and schedule.warmup_iters"):
        config_from_dict({"task": "classification", "schedule": {"warmup_epochs": 1, "warmup_iters": 100}})
