"""BottomUpPoseTask through the engine: the shipped recipes follow the official experiments, a tiny model
trains two steps and evaluates on the real COCO sample, and bad recipes are named errors."""

from pathlib import Path

import numpy as np
import pytest
import torch

from hrnet.engine import ConfigError, config_from_dict, fit, load_config
from hrnet.tasks import get_task

RECIPES = Path(__file__).resolve().parents[3] / "recipes" / "bottom_up_pose"
TINY_STAGES = [
    {"modules": 1, "block": "bottleneck", "blocks": [1], "channels": [8]},
    {"modules": 1, "block": "basic", "blocks": [1, 1], "channels": [8, 16]},
    {"modules": 1, "block": "basic", "blocks": [1, 1, 1], "channels": [8, 16, 32]},
    {"modules": 1, "block": "basic", "blocks": [1, 1, 1, 1], "channels": [8, 16, 32, 64]},
]


def tiny_recipe(coco_dir, **data):
    return {
        "task": "bottom_up_pose",
        "model": {"arch": "hrnet_w18_small_v1", "stem_channels": 16, "stages": TINY_STAGES},
        "data": {"train_annotations": str(coco_dir / "test_coco.json"), "train_images": str(coco_dir),
                 "val_annotations": str(coco_dir / "test_coco.json"), "val_images": str(coco_dir),
                 "input_size": 128, **data},
        "optimizer": {"name": "adam", "lr": 0.001, "weight_decay": 0.0},
        "train": {"epochs": 1, "batch_size": 2, "max_steps": 2, "workers": 0, "device": "cpu", "plot": False},
    }


@pytest.mark.parametrize("name, arch, size, batch", [("higher_hrnet_w32_512.yaml", "hrnet_w32", 512, 48),
                                                    ("higher_hrnet_w32_640.yaml", "hrnet_w32", 640, 48),
                                                    ("higher_hrnet_w48_640.yaml", "hrnet_w48", 640, 40)])
def test_shipped_recipes_follow_the_official_experiments(name, arch, size, batch):
    config = load_config(RECIPES / name)
    d = config.data
    assert config.task == "bottom_up_pose" and config.model.arch == arch and config.model.num_classes == 17
    assert (config.optimizer.name, config.optimizer.lr, config.optimizer.weight_decay) == ("adam", 0.001, 0.0)
    assert config.train.epochs == 300 and config.schedule.milestones == [200, 260] and config.schedule.gamma == 0.1
    assert config.train.batch_size == batch and config.schedule.warmup_epochs == 0
    assert d.input_size == size and d.output_sizes == (size // 4, size // 2) and d.sigma == 2.0
    assert (d.max_rotation, d.min_scale, d.max_scale, d.scale_type, d.max_translate, d.flip) == (
        30.0, 0.75, 1.5, "short", 40.0, 0.5)
    assert d.heatmap_loss_factors == [1.0, 1.0] and d.push_loss_factors == d.pull_loss_factors == [0.001, 0.001]
    assert d.ae_loss_type == "exp" and d.max_people == 30
    t = d.test
    assert (t.scales, t.flip, t.adjust, t.refine, t.detection_threshold, t.tag_threshold, t.nms_kernel) == (
        (1.0,), True, True, True, 0.1, 1.0, 5)


def test_two_training_steps_and_an_evaluation(tmp_path, coco_dir):
    torch.manual_seed(0)
    summary = fit(config_from_dict(tiny_recipe(coco_dir, test={"flip": True})), tmp_path / "run")
    assert summary["step"] == 2
    metrics = summary["metrics"]
    assert set(metrics) == {"AP", "AP50", "AP75", "AP_M", "AP_L", "AR", "AR50", "AR75", "AR_M", "AR_L"}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    log = (tmp_path / "run" / "log.jsonl").read_text()
    assert all(f'"train_{part}"' in log for part in ("heatmap_0", "heatmap_1", "push_0", "pull_0"))


def test_train_step_loss_decreases_on_one_batch(coco_dir):
    config = config_from_dict(tiny_recipe(coco_dir, max_rotation=0.0, min_scale=1.0, max_scale=1.0, max_translate=0.0,
                                          flip=0.0))
    task = get_task("bottom_up_pose")(config)
    torch.manual_seed(0)
    model = task.build_model().train()
    dataset = task.build_dataset("train")
    batch = task.collate([dataset[i] for i in range(2)])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.002)
    losses = []
    for _ in range(5):
        loss, parts = task.train_step(model, batch, torch.device("cpu"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        assert loss.item() == pytest.approx(sum(v for k, v in parts.items() if k != "loss"), rel=1e-5)
    assert losses[-1] < 0.9 * losses[0]


def test_inference_settings_and_the_predictor_side(coco_dir):
    from hrnet.data.io import read_image

    config = config_from_dict(tiny_recipe(coco_dir, test={"flip": False, "max_people": 5}))
    task = get_task("bottom_up_pose")(config)
    settings = task.inference_settings()
    assert settings.input_size == 128 and settings.flip is False and settings.max_people == 5
    model = task.build_model().eval()
    inference = task.inference(model, device=torch.device("cpu"), refine=False)
    assert inference.how["refine"] is False and inference.how["task"] == "bottom_up_pose"
    with pytest.raises(ConfigError, match="unknown bottom_up_pose option"):
        task.inference(model, device=torch.device("cpu"), decoding="dark")
    picture = read_image(coco_dir / "000000000785.jpg")
    (result,) = inference.run([picture], [inference.prepare(picture)], ["000000000785.jpg"])
    assert result.keypoints.shape[1:] == (17, 2) and len(result.scores) == len(result.boxes)
    assert result.draw().shape == picture.shape
    assert np.all(result.boxes[:, 2:] >= result.boxes[:, :2])


@pytest.mark.parametrize("data, message", [
    ({"input_size": 100}, "data.input_size must be a positive multiple of 8"),
    ({"heatmap_loss_factors": [1.0]}, "one entry per model output"),
    ({"test": {"flip_test": True}}, "unknown key data.test.flip_test"),
    ({"test": {"scales": [0.5, 2.0]}}, "must include 1.0"),
    ({"scale_type": "middle"}, "data.scale_type"),
    ({"flip": 2.0}, "data.flip is a probability"),
])
def test_bad_recipes_are_named_errors(coco_dir, data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(tiny_recipe(coco_dir, **data))


def test_keypoint_count_must_match_the_model(coco_dir):
    recipe = tiny_recipe(coco_dir)
    recipe["model"]["num_classes"] = 14
    with pytest.raises(ConfigError, match="model.num_classes is 14 but data.keypoints 'coco' has 17"):
        get_task("bottom_up_pose")(config_from_dict(recipe))
