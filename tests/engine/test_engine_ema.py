"""The weight average (train.ema): the update rule by hand, timm's warmup, BatchNorm buffers,
what is evaluated and what the checkpoints hold."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hrnet.engine import fit, load_config, load_run_checkpoint
from hrnet.engine.ema import ModelEma, ema_decay
from hrnet.engine.testing import tiny_classification_recipe, write_recipe
from hrnet.tasks.classification import ClassificationTask


def test_decay_follows_timm_model_ema_v3():
    """timm ModelEmaV3.get_decay(step) with update_after_step 0, warmup_gamma 1, min_decay 0:
    s = step - 1; 0 for s <= 0, else min(decay, 1 - (1 + s) ** -power) (or decay without warmup)."""
    for step in range(1, 200, 7):
        s = step - 1
        expected = 0.0 if s <= 0 else min(0.999, 1 - (1 + s) ** -0.75)
        assert ema_decay(step, decay=0.999, warmup=True, warmup_power=0.75) == pytest.approx(expected, abs=1e-15)
        assert ema_decay(step, decay=0.9, warmup=False, warmup_power=0.75) == (0.0 if s <= 0 else 0.9)
    assert ema_decay(10_000, decay=0.999, warmup=True, warmup_power=0.75) == 0.999  # capped


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


@pytest.mark.parametrize("buffers", ["average", "copy"])
def test_update_rule_against_a_hand_computation(buffers):
    model = _net().train()
    ema = ModelEma(model, decay=0.6, warmup=False, buffers=buffers)
    history = []  # the model's state after each "step"
    for step in range(4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.randn(5, 3) * (step + 1))  # moves the BatchNorm statistics
        history.append({k: v.clone() for k, v in model.state_dict().items()})
        ema.update(model)
    # By hand: e1 = w1 (the first update copies), e_n = 0.6 e_(n-1) + 0.4 w_n.
    for key in history[0]:
        if key.endswith("num_batches_tracked"):
            expected = history[-1][key]  # integer buffers are copied
        elif buffers == "copy" and ("running" in key):
            expected = history[-1][key]
        else:
            expected = history[0][key]
            for state in history[1:]:
                expected = 0.6 * expected + 0.4 * state[key]
        torch.testing.assert_close(ema.module.state_dict()[key], expected, rtol=0, atol=1e-6, msg=key)
    assert ema.updates == 4 and not ema.module.training
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_warmup_decays_by_hand():
    model = _net()
    ema = ModelEma(model, decay=0.99, warmup=True, warmup_power=0.5)
    weights = []
    for _ in range(3):
        with torch.no_grad():
            model[0].weight.add_(1.0)
        weights.append(model[0].weight.detach().clone())
        ema.update(model)
    d2, d3 = 1 - 2 ** -0.5, 1 - 3 ** -0.5
    expected = d3 * (d2 * weights[0] + (1 - d2) * weights[1]) + (1 - d3) * weights[2]
    torch.testing.assert_close(ema.module[0].weight, expected, rtol=0, atol=1e-6)


def test_training_evaluates_and_saves_the_average(tmp_path, stripes):
    recipe = tiny_classification_recipe(*stripes, train={"epochs": 2, "ema": {"decay": 0.5, "warmup": False}})
    config = load_config(write_recipe(tmp_path / "r.yaml", recipe))
    summary = fit(config, tmp_path / "run")
    last = load_run_checkpoint(tmp_path / "run" / "last.pth")
    trained, averaged = last["ema"]["trained_model"], last["model"]
    assert last["ema"]["updates"] == summary["step"] == 6
    moved = max((trained[k].float() - averaged[k].float()).abs().max().item() for k in trained)
    assert moved > 1e-4  # the average is not the trained model
    # The logged val metric is the average's: evaluate `model` of last.pth again.
    task = ClassificationTask(load_config(write_recipe(tmp_path / "r.yaml", recipe)))
    model = task.build_model()
    model.load_state_dict(averaged)
    from hrnet.engine import build_loader, evaluate

    loader, _ = build_loader(task, task.config, "val", torch.device("cpu"))
    again = evaluate(model, task, loader, torch.device("cpu"))
    assert again["top1"] == pytest.approx(summary["metrics"]["top1"])
    assert again["loss"] == pytest.approx(summary["metrics"]["loss"], rel=1e-5)
    best = load_run_checkpoint(tmp_path / "run" / "best.pth")
    assert best["step"] == summary["best"]["step"] and "trained_model" in best["ema"]


SYNC_CHECK = """
import torch, torch.distributed as dist
from torch import nn
from hrnet.engine.ema import ModelEma
dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).train()
ema = ModelEma(model, decay=0.5, warmup=False)
for step in range(3):
    model(torch.randn(6, 3) + rank)  # without SyncBatchNorm each rank's statistics differ
    ema.update(model)
before = ema.module[1].running_mean.clone()
ema.synchronize()
gathered = [torch.zeros(4) for _ in range(2)]
dist.all_gather(gathered, ema.module[1].running_mean)
assert torch.equal(gathered[0], gathered[1]), gathered
assert torch.equal(ema.module[1].running_mean, before) == (rank == 0)
print("equal buffers")
dist.destroy_process_group()
"""


def test_synchronize_gives_every_rank_rank_zeros_buffers(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "sync.py"
    script.write_text(SYNC_CHECK)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"),
                                          os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("equal buffers") == 2
