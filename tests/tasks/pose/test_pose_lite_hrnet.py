"""Lite-HRNet pose: the shipped recipes carry the official settings (HRNet/Lite-HRNet configs/top_down/**), and a
tiny Lite-HRNet trains, evaluates and predicts through `hrnet train / eval` like an HRNet."""

import json
from pathlib import Path

import pytest
import yaml

from hrnet.cli import main
from hrnet.engine import ConfigError, load_config

RECIPES = Path(__file__).resolve().parents[3] / "recipes" / "pose"
# recipe -> (arch, height, published config's images per GPU, sigma)
OFFICIAL = {
    "lite_hrnet_18_coco_256x192.yaml": ("lite_hrnet_18", 256, 64, 2.0),
    "lite_hrnet_18_coco_384x288.yaml": ("lite_hrnet_18", 384, 32, 3.0),
    "lite_hrnet_30_coco_256x192.yaml": ("lite_hrnet_30", 256, 64, 2.0),
    "lite_hrnet_30_coco_384x288.yaml": ("lite_hrnet_30", 384, 32, 3.0),
    "lite_hrnet_18_mpii_256x256.yaml": ("lite_hrnet_18", 256, 32, 2.0),
}
TINY_STAGES = [{"modules": 1, "block": "ccw", "blocks": [1] * n, "channels": [8, 16, 32, 64][:n], "reduce_ratio": 4}
               for n in (2, 3, 4)]


def test_every_lite_hrnet_recipe_is_checked():
    assert sorted(p.name for p in RECIPES.glob("lite_hrnet_*.yaml")) == sorted(OFFICIAL)


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_recipes_follow_the_official_settings(name):
    arch, height, per_gpu, sigma = OFFICIAL[name]
    config = load_config(RECIPES / name)
    mpii = "mpii" in name
    assert config.task == "pose" and config.model.arch == arch and config.model.pretrained is None
    assert (config.optimizer.name, config.optimizer.lr, config.optimizer.weight_decay) == ("adam", 0.002, 0.0)
    schedule = config.schedule
    assert (schedule.name, schedule.milestones, schedule.gamma) == ("multistep", [170, 200], 0.1)
    assert (schedule.warmup_iters, schedule.warmup_factor) == (500, 0.001)
    assert config.train.epochs == 210 and config.train.batch_size == 8 * per_gpu  # 8 GPUs
    assert config.eval.every == (5 if mpii else 10)
    data = config.data
    assert data.input_size[0] == height and data.sigma == sigma
    assert (data.rotation_factor, data.scale_factor, data.rotation_prob) == (30.0, 0.25, 0.6)
    assert data.half_body_prob == (0.0 if mpii else 0.3) and data.half_body_joints == 8
    assert data.flip and data.flip_test and data.shift_heatmap and data.decoding == "quarter"
    assert data.keypoints == ("mpii" if mpii else "coco")
    if not mpii:
        assert data.val_boxes.endswith("COCO_val2017_detections_AP_H_56_person.json")
        assert (data.rescore_threshold, data.oks_nms_threshold, data.val_box_score_threshold) == (0.2, 0.9, 0.0)


def _tiny_recipe(tmp_path, coco_dir, stages=TINY_STAGES):
    recipe = {
        "task": "pose",
        "model": {"arch": "lite_hrnet_18", "stem_channels": 16, "stages": stages, "grad_checkpointing": True},
        "data": {"train_annotations": str(coco_dir / "test_coco.json"), "train_images": str(coco_dir),
                 "val_annotations": str(coco_dir / "test_coco.json"), "val_images": str(coco_dir),
                 "input_size": [64, 48], "sigma": 1.0},
        "optimizer": {"name": "adam", "lr": 0.002, "weight_decay": 0.0},
        "schedule": {"name": "multistep", "milestones": [170, 200], "warmup_iters": 500, "warmup_factor": 0.001},
        "train": {"epochs": 1, "batch_size": 4, "max_steps": 2, "workers": 0, "device": "cpu", "plot": False},
    }
    path = tmp_path / "tiny_lite.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_a_tiny_lite_hrnet_trains_and_evaluates_from_the_command_line(tmp_path, coco_dir, capsys):
    run = tmp_path / "run"
    assert main(["train", "--config", str(_tiny_recipe(tmp_path, coco_dir)), "--out-dir", str(run)]) == 0
    logged = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert {"val/AP", "val/AR"} <= set([r for r in logged if r.get("kind") == "epoch"][-1])
    saved = yaml.safe_load((run / "config.yaml").read_text())["model"]
    assert saved["arch"] == "lite_hrnet_18" and saved["stages"][0]["block"] == "ccw"
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run / "last.pth"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "AP" in metrics


def test_bad_inline_lite_stages_are_errors_naming_the_field(tmp_path, coco_dir):
    stages = [dict(stage) for stage in TINY_STAGES]
    with pytest.raises(ConfigError, match="model.stages: HRNetSpec needs 4 stages .* or 3"):
        load_config(_tiny_recipe(tmp_path, coco_dir, stages[1:]))
    del stages[1]["reduce_ratio"]
    # (engine.config turns only HRNetSpec's errors into ConfigError; a StageSpec's arrives as the ValueError itself)
    with pytest.raises(ValueError, match="StageSpec.reduce_ratio must be a positive integer for block 'ccw'"):
        load_config(_tiny_recipe(tmp_path, coco_dir, stages))
