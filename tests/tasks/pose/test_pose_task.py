"""PoseTask through the engine: recipes load, `hrnet train / eval / predict` run on real data."""

import json
from pathlib import Path

import pytest
import yaml

from hrnet.cli import main
from hrnet.engine import ConfigError, load_config

RECIPES = Path(__file__).resolve().parents[3] / "recipes" / "pose"
TINY_STAGES = [
    {"modules": 1, "block": "bottleneck", "blocks": [1], "channels": [8]},
    {"modules": 1, "block": "basic", "blocks": [1, 1], "channels": [8, 16]},
    {"modules": 1, "block": "basic", "blocks": [1, 1, 1], "channels": [8, 16, 32]},
    {"modules": 1, "block": "basic", "blocks": [1, 1, 1, 1], "channels": [8, 16, 32, 64]},
]


def tiny_recipe(tmp_path, coco_dir, **data):
    recipe = {
        "task": "pose",
        "model": {"arch": "hrnet_w18_small_v1", "stem_channels": 16, "stages": TINY_STAGES},
        "data": {"train_annotations": str(coco_dir / "test_coco.json"), "train_images": str(coco_dir),
                 "val_annotations": str(coco_dir / "test_coco.json"), "val_images": str(coco_dir),
                 "input_size": [64, 48], "sigma": 1.0, **data},
        "optimizer": {"name": "adam", "lr": 0.001, "weight_decay": 0.0},
        "train": {"epochs": 1, "batch_size": 4, "max_steps": 2, "workers": 0, "device": "cpu", "plot": False},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


# Lite-HRNet's recipes (lite_hrnet_*.yaml) are checked in test_pose_lite_hrnet.py.
@pytest.mark.parametrize("name", sorted(p.name for p in RECIPES.glob("hrnet_*.yaml")))
def test_shipped_recipes_follow_the_official_settings(name):
    config = load_config(RECIPES / name)
    assert config.task == "pose" and config.optimizer.name == "adam" and config.optimizer.lr == 0.001
    assert config.train.epochs == 210 and config.schedule.milestones == [170, 200]
    height = config.data.input_size[0]
    assert config.data.sigma == {256: 2.0, 384: 3.0}[height]
    assert config.data.keypoints == ("mpii" if "mpii" in name else "coco")


def test_bad_pose_data_keys_are_errors(tmp_path, coco_dir):
    with pytest.raises(ConfigError, match="data.input_size"):
        load_config(tiny_recipe(tmp_path, coco_dir, input_size=[65, 48]))
    with pytest.raises(ConfigError, match="data.decoding"):
        load_config(tiny_recipe(tmp_path, coco_dir, decoding="soft"))


def test_train_eval_predict_from_the_command_line(tmp_path, coco_dir, capsys):
    recipe = tiny_recipe(tmp_path, coco_dir, val_boxes=str(coco_dir / "test_coco_det_AP_H_56.json"),
                         val_box_score_threshold=0.5)
    run = tmp_path / "run"
    assert main(["train", "--config", str(recipe), "--out-dir", str(run)]) == 0
    logged = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    epoch = [r for r in logged if r.get("kind") == "epoch"][-1]
    assert {"val/AP", "val/AP50", "val/AR_L"} <= set(epoch) and (run / "best.pth").is_file()
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["num_classes"] == 17
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run / "last.pth"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["AP"] == pytest.approx(epoch["val/AP"]) and len(metrics) == 10
    out = tmp_path / "pred"
    assert main(["predict", "--checkpoint", str(run / "last.pth"), str(coco_dir / "000000000785.jpg"),
                 "--out-dir", str(out), "--set", f"data.predict.boxes={coco_dir / 'test_coco_det_AP_H_56.json'}",
                 "--set", "data.predict.box_score_threshold=0.9"]) == 0
    results = json.loads((out / "keypoints.json").read_text())
    detections = json.loads((coco_dir / "test_coco_det_AP_H_56.json").read_text())
    assert 0 < len(results) <= sum(d["image_id"] == 785 and d["score"] >= 0.9 for d in detections)
    assert all(len(r["keypoints"]) == 51 and r["image_id"] == 785 for r in results)
    assert (out / "000000000785.png").is_file()


def test_task_datasets_and_a_detector_plugged_into_predict(tmp_path, coco_dir):
    import numpy as np

    from hrnet.engine.config import config_to_dict
    from hrnet.tasks import get_task

    config = load_config(tiny_recipe(tmp_path, coco_dir, train_repeat=3))
    task = get_task("pose")(config)
    assert len(task.build_dataset("train")) == 3 * len(task.build_dataset("val")) == 36
    model = task.build_model().eval()
    seen = []

    def detector(image):  # what a person detector returns: (N, 5) x1, y1, x2, y2, score
        seen.append(image.shape)
        return np.array([[280.0, 45, 500, 390, 0.95], [10, 10, 60, 60, 0.1]])

    import hrnet

    predictor = hrnet.Predictor(model, task="pose", config=config_to_dict(config), device="cpu", detector=detector,
                                box_score_threshold=0.5)
    summary = hrnet.write_predictions(predictor, [coco_dir / "000000000785.jpg"], tmp_path / "out")
    persons = json.loads((tmp_path / "out" / "keypoints.json").read_text())
    assert seen == [(425, 640, 3)] and len(persons) == 1 and persons[0]["box"][:4] == [280, 45, 220, 345]
    assert summary.lines[0].startswith(str(coco_dir / "000000000785.jpg") + ": 1 person(s)")


def test_mpii_chain_scores_its_own_targets_100(mpii_dir):
    """MPII crops -> targets -> decoding -> back-projection -> PCKh: the targets, taken as the
    model's output, land within half a heatmap cell of the labels, far inside 0.5 head."""
    import torch

    from hrnet.engine import config_from_dict
    from hrnet.tasks import get_task

    recipe = {"task": "pose", "model": {"arch": "hrnet_w18_small_v1", "stages": TINY_STAGES},
              "data": {"format": "mpii", "keypoints": "mpii", "train_annotations": str(mpii_dir / "test_mpii.json"),
                       "train_images": str(mpii_dir), "val_annotations": str(mpii_dir / "test_mpii.json"),
                       "val_images": str(mpii_dir), "input_size": [256, 256], "flip_test": False}}
    task = get_task("pose")(config_from_dict(recipe))
    dataset = task.build_dataset("val")
    batch = task.collate([dataset[i] for i in range(len(dataset))])
    evaluator = task.make_evaluator(torch.device("cpu"))
    evaluator.update(lambda images: batch["target"], batch)
    evaluator.synchronize()
    metrics = evaluator.compute()
    assert evaluator.main_metric == "Mean" and metrics["Mean"] == 100.0
    assert evaluator.result.how["boxes"] == "MPII center/scale" and evaluator.result.how["flip_test"] == "off"
