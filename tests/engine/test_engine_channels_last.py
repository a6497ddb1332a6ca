"""train.channels_last: NHWC weights and batches give the same training, saved as NCHW."""

from __future__ import annotations

from collections import namedtuple

import pytest
import torch

from hrnet.engine import fit, load_config, load_run_checkpoint
from hrnet.engine.pieces import to_channels_last
from hrnet.engine.testing import tiny_classification_recipe, write_recipe


def test_only_4d_floating_tensors_change_memory_order():
    Pair = namedtuple("Pair", "a b")
    images, labels, heatmaps = torch.randn(2, 3, 5, 7), torch.randint(0, 3, (2, 5, 7)), torch.randn(2, 4, 5, 7)
    pair = Pair(torch.randn(2, 3, 4, 4), 1)
    out = to_channels_last({"images": images, "targets": [labels, (heatmaps,)], "pair": pair, "name": "x"})
    assert out["images"].is_contiguous(memory_format=torch.channels_last)
    assert not out["images"].is_contiguous()
    assert torch.equal(out["images"], images)
    assert out["targets"][0] is labels  # 3-D integer labels stay as they are
    assert isinstance(out["targets"][1], tuple)
    assert out["targets"][1][0].is_contiguous(memory_format=torch.channels_last)
    assert out["pair"] is pair and out["name"] == "x"


def _fit(tmp_path, stripes, name: str, overrides: list[str], *, resume: bool = False) -> dict:
    recipe = tiny_classification_recipe(*stripes, train={"epochs": 2, "ema": {"decay": 0.5, "warmup": False}})
    config = load_config(write_recipe(tmp_path / "r.yaml", recipe), overrides)
    summary = fit(config, tmp_path / name, resume=resume)
    return {**summary, "last": load_run_checkpoint(tmp_path / name / "last.pth")}


def test_training_matches_nchw_and_saves_nchw(tmp_path, stripes):
    # A small learning rate: on 24 images the tiny net's training is chaotic enough at lr 0.01 to
    # turn float32 rounding differences into different weights within six steps.
    plain = _fit(tmp_path, stripes, "nchw", ["optimizer.lr=0.0001"])
    nhwc = _fit(tmp_path, stripes, "nhwc", ["optimizer.lr=0.0001", "train.channels_last=true"])
    assert nhwc["step"] == plain["step"] == 6
    for part in ("model", "trained_model"):
        a = plain["last"]["model"] if part == "model" else plain["last"]["ema"][part]
        b = nhwc["last"]["model"] if part == "model" else nhwc["last"]["ema"][part]
        for key, value in b.items():
            assert value.is_contiguous(), key  # NCHW on disk, whatever the training layout
            # The same sums in another order: float32 rounding only.
            torch.testing.assert_close(value.float(), a[key].float(), rtol=1e-3, atol=1e-4, msg=key)
    assert nhwc["metrics"]["loss"] == pytest.approx(plain["metrics"]["loss"], rel=1e-3)


def test_resume_with_channels_last_is_exact(tmp_path, stripes):
    straight = _fit(tmp_path, stripes, "straight", ["train.channels_last=true"])
    _fit(tmp_path, stripes, "resumed", ["train.channels_last=true", "train.epochs=1"])
    resumed = _fit(tmp_path, stripes, "resumed", ["train.channels_last=true"], resume=True)
    assert resumed["step"] == straight["step"] == 6
    for part in ("model", "trained"):
        a = straight["last"]["model"] if part == "model" else straight["last"]["ema"]["trained_model"]
        b = resumed["last"]["model"] if part == "model" else resumed["last"]["ema"]["trained_model"]
        assert all(torch.equal(a[key], b[key]) for key in a), part


def test_the_trained_model_holds_nhwc_weights(tmp_path, stripes):
    from hrnet.engine.trainer import prepare

    recipe = tiny_classification_recipe(*stripes, train={"channels_last": True, "ema": {"decay": 0.5}})
    run = prepare(load_config(write_recipe(tmp_path / "r.yaml", recipe)), tmp_path / "run")
    for model in (run.model, run.ema.module):
        convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        assert convs and all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
                             for w in convs if w.shape[-1] > 1)


def test_the_step_time_benchmark_compares_both_layouts(tmp_path, stripes, capsys):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "train_step.py"
    spec = importlib.util.spec_from_file_location("train_step_benchmark", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_classification_recipe(*stripes))
    assert module.main(["--recipe", str(recipe), "--steps", "2", "--rounds", "1", "--set", "optimizer.lr=0.0001"]) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1].split("|")
    nchw, nhwc, speedup, difference = (float(cell.strip().rstrip("x")) for cell in row[2:6])
    assert nchw > 0 and nhwc > 0 and speedup == pytest.approx(nchw / nhwc, rel=0.01)
    assert difference < 1e-3  # the same batches give the same losses in both layouts
