"""The training loop on CPU: DDP equals one process (weight average included), SIGKILL + --resume
equals an uninterrupted run (with the weight average on), the NaN guard, AMP / accumulation /
clipping / activation checkpointing, no process group alone."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from hrnet.engine import TrainingDiverged, fit, load_config, load_run_checkpoint
from hrnet.errors import ConfigError
from hrnet.engine.testing import make_synthetic_folder, tiny_classification_recipe, write_recipe
from hrnet.tasks.classification import ClassificationTask

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=300, **kwargs)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_run_checkpoint(path)["model"]


def _log(path: Path) -> list[dict]:
    """log.jsonl without the timing fields (the only ones that may differ between equal runs)."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("time", "rate")} for r in records]


def test_two_process_ddp_matches_one_process(tmp_path):
    train = make_synthetic_folder(tmp_path / "train", per_class=16, seed=0)
    recipe = tiny_classification_recipe(
        train, train, data={"image_size": 64, "resize_size": 72},
        optimizer={"lr": 0.001}, train={"batch_size": 16, "max_steps": 3, "epochs": 5,
                                        "ema": {"decay": 0.5, "warmup": False}},
        eval={"every": 0})
    path = write_recipe(tmp_path / "r.yaml", recipe)
    one = _run([sys.executable, "-m", "hrnet", "train", "-c", str(path), "-o", str(tmp_path / "one")])
    assert one.returncode == 0, one.stderr
    two = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                "-m", "hrnet", "train", "-c", str(path), "-o", str(tmp_path / "two")])
    assert two.returncode == 0, two.stderr[-3000:]
    states = load_run_checkpoint(tmp_path / "one" / "last.pth"), load_run_checkpoint(tmp_path / "two" / "last.pth")
    # The weight average (of the unwrapped model) agrees as closely as the trained weights do.
    a, b = states[0]["model"], states[1]["model"]
    assert a.keys() == b.keys() and states[1]["ema"]["updates"] == 3
    assert not any("module." in k for k in b)
    for key in a:
        tolerance = 2e-2 if "running" in key else 2e-3
        torch.testing.assert_close(a[key].float(), b[key].float(), rtol=1e-2, atol=tolerance, msg=f"average {key}")
    a, b = states[0]["ema"]["trained_model"], states[1]["ema"]["trained_model"]
    # Float tolerance: the two runs sum in different orders, and at this size a rounding difference
    # can flip a ReLU at zero, which moves a few gradients by percents (two single-process runs
    # with different thread counts differ as much). Weights move by much more than the tolerance.
    start = ClassificationTask(load_config(path)).build_model().state_dict()
    for key in a:
        tolerance = 2e-2 if "running" in key else 2e-3
        torch.testing.assert_close(a[key].float(), b[key].float(), rtol=1e-2, atol=tolerance, msg=key)
    moved = max((a[k].float() - start[k].float()).abs().max().item() for k in a if "running" not in k)
    assert moved > 2e-2
    steps = [r for r in _log(tmp_path / "two" / "log.jsonl") if r["kind"] == "train"]
    assert [r["step"] for r in steps] == [1, 2, 3]
    assert [r["loss"] for r in steps] == pytest.approx([r["loss"] for r in _log(tmp_path / "one" / "log.jsonl")
                                                        if r["kind"] == "train"], rel=1e-3)


KILLER = textwrap.dedent("""
    import os, signal, sys
    from hrnet.tasks.classification import ClassificationTask
    step, calls = ClassificationTask.train_step, [0]
    def train_step(self, *args):
        calls[0] += 1
        if calls[0] == int(os.environ["KILL_AT"]):
            os.kill(os.getpid(), signal.SIGKILL)
        return step(self, *args)
    ClassificationTask.train_step = train_step
    from hrnet.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(tmp_path, stripes):
    # With the weight average on: both the averaged and the trained weights must continue exactly.
    recipe = tiny_classification_recipe(*stripes, train={"deterministic": True, "checkpoint_every": 2,
                                                         "epochs": 2, "plot": True, "ema": {"decay": 0.7}})
    path = write_recipe(tmp_path / "r.yaml", recipe)
    full = _run([sys.executable, "-m", "hrnet", "train", "-c", str(path), "-o", str(tmp_path / "full")])
    assert full.returncode == 0, full.stderr
    # 24 images, batch 8: 3 steps an epoch. Die inside step 6 (the last of epoch 2); `last` was
    # written after step 4 (mid-epoch 2).
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    killed = subprocess.run([sys.executable, str(script), "train", "-c", str(path), "-o", str(tmp_path / "run")],
                            env={**_env(), "KILL_AT": "6"}, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    state = load_run_checkpoint(tmp_path / "run" / "last.pth")
    assert (state["epoch"], state["epoch_step"], state["step"]) == (1, 1, 4)
    assert not list((tmp_path / "run").glob(".*tmp"))
    assert [r["step"] for r in _log(tmp_path / "run" / "log.jsonl") if r["kind"] == "train"] == [1, 2, 3, 4, 5]
    again = _run([sys.executable, "-m", "hrnet", "train", "-c", str(path), "-o", str(tmp_path / "run"),
                  "--resume"])
    assert again.returncode == 0, again.stderr
    assert "resumed" in again.stderr
    full, run = load_run_checkpoint(tmp_path / "full" / "last.pth"), load_run_checkpoint(tmp_path / "run" / "last.pth")
    for a, b in ((full["model"], run["model"]), (full["ema"]["trained_model"], run["ema"]["trained_model"])):
        for key in a:
            assert torch.equal(a[key], b[key]), key
    assert full["ema"]["updates"] == run["ema"]["updates"] == 6
    key = "head.classifier.weight"
    assert not torch.equal(full["model"][key], full["ema"]["trained_model"][key])  # the average is not the model
    assert _log(tmp_path / "full" / "log.jsonl") == _log(tmp_path / "run" / "log.jsonl")
    assert torch.equal(_weights(tmp_path / "full" / "best.pth")["head.classifier.weight"],
                       _weights(tmp_path / "run" / "best.pth")["head.classifier.weight"])
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    # Starting over into a run directory that holds a run is refused.
    refused = _run([sys.executable, "-m", "hrnet", "train", "-c", str(path), "-o", str(tmp_path / "run")])
    assert refused.returncode == ConfigError.exit_code and "--resume" in refused.stderr


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, stripes, monkeypatch):
    config = load_config(write_recipe(tmp_path / "r.yaml", tiny_classification_recipe(*stripes)))
    step, calls = ClassificationTask.train_step, [0]

    def train_step(self, model, batch, device):
        calls[0] += 1
        loss, parts = step(self, model, batch, device)
        return (loss * float("nan") if calls[0] == 5 else loss), parts

    monkeypatch.setattr(ClassificationTask, "train_step", train_step)
    with pytest.raises(TrainingDiverged, match=r"loss became NaN or infinite at epoch 2, step 5.*last\.pth"):
        fit(config, tmp_path / "run")
    state = load_run_checkpoint(tmp_path / "run" / "last.pth")
    assert state["step"] == 3 and state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_single_process_never_creates_a_process_group(tmp_path, stripes, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("init_process_group called in a single process")

    monkeypatch.setattr(torch.distributed, "init_process_group", refuse)
    config = load_config(write_recipe(tmp_path / "r.yaml", tiny_classification_recipe(*stripes)),
                         ["train.max_steps=1"])
    fit(config, tmp_path / "run")
    assert not torch.distributed.is_initialized()


def test_bf16_accumulation_clipping_and_activation_checkpointing(tmp_path, stripes):
    config = load_config(write_recipe(tmp_path / "r.yaml", tiny_classification_recipe(*stripes)),
                         ["train.amp=bf16", "train.accumulate=2", "train.clip_grad_norm=1.0",
                          "model.grad_checkpointing=true", "train.epochs=1", "optimizer.name=adamw",
                          "optimizer.lr=0.001", "schedule.name=poly", "schedule.warmup_epochs=0.5"])
    summary = fit(config, tmp_path / "run")
    assert summary["step"] == 3 and summary["epoch"] == 1
    records = _log(tmp_path / "run" / "log.jsonl")
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in records if r["kind"] == "train")
    assert "val/top1" in records[-1]
    saved = load_run_checkpoint(tmp_path / "run" / "last.pth")
    assert saved["config"]["train"]["amp"] == "bf16" and saved["spec"]["stem_channels"] == 16
    assert saved["scheduler"]["last_epoch"] == 3


def test_activation_checkpointing_gives_the_same_gradients(tmp_path, stripes):
    config = load_config(write_recipe(tmp_path / "r.yaml", tiny_classification_recipe(*stripes)))
    task = ClassificationTask(config)
    batch = task.collate([task.build_dataset("val")[i] for i in range(4)])
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = task.build_model().train()
        model.backbone.grad_checkpointing = checkpointing
        loss, _ = task.train_step(model, batch, torch.device("cpu"))
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-4, atol=1e-6, msg=name)


def test_fp16_needs_cuda(tmp_path, stripes):
    config = load_config(write_recipe(tmp_path / "r.yaml", tiny_classification_recipe(*stripes)),
                         ["train.amp=fp16", "train.device=cpu"])
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        fit(config, tmp_path / "run")


SYNC_BN_CHECK = textwrap.dedent("""
    import torch, torch.distributed as dist
    from torch import nn
    from hrnet.engine import distributed as D
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    def net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 5, 3, stride=2),
                             nn.BatchNorm2d(5), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 81, 3)).double()
    x, y = torch.randn(8, 3, 22, 22, dtype=torch.float64), torch.randint(0, 3, (8,))
    ref = net().train()
    nn.functional.cross_entropy(ref(x), y).backward()
    model = nn.parallel.DistributedDataParallel(D.convert_sync_batchnorm(net(), torch.device("cpu")).train())
    nn.functional.cross_entropy(model(x[rank::2]), y[rank::2]).backward()
    for (name, a), b in zip(ref.named_parameters(), model.module.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-12, msg=name)
    for a, b in zip(ref.buffers(), model.module.buffers()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    print("same gradients")
    dist.destroy_process_group()
""")


def test_cpu_sync_batchnorm_under_ddp_is_exact_in_float64(tmp_path):
    script = tmp_path / "sync_bn.py"
    script.write_text(SYNC_BN_CHECK)
    result = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("same gradients") == 2


def test_resume_can_extend_the_schedule(tmp_path, stripes):
    path = write_recipe(tmp_path / "r.yaml", tiny_classification_recipe(*stripes, schedule={"name": "cosine"}))
    fit(load_config(path, ["train.epochs=1"]), tmp_path / "run")
    summary = fit(load_config(path, ["train.epochs=2"]), tmp_path / "run", resume=True)
    assert summary["epoch"] == 2 and summary["step"] == 6
    lrs = [r["lr"] for r in _log(tmp_path / "run" / "log.jsonl") if r["kind"] == "train"]
    # cosine over 2 epochs (6 steps) from 0.01, the first epoch as logged by the 1-epoch run
    expected = [0.01 * 0.5 * (1 + math.cos(math.pi * i / 3)) for i in range(3)] + \
               [0.01 * 0.5 * (1 + math.cos(math.pi * i / 6)) for i in range(3, 6)]
    assert lrs == pytest.approx(expected)
    with pytest.raises(ValueError, match="already holds a run"):
        fit(load_config(path), tmp_path / "run")
