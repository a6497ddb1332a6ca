from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from hrnet.cli import main
from hrnet.data.io import read_image
from hrnet.engine import ConfigError, config_from_dict, fit, load_config
from hrnet.inference.predictor import Predictor
from hrnet.tasks.detection.task import DetectionTask

RECIPES = Path(__file__).resolve().parents[3] / "recipes" / "detection"


def _recipe(annotations: Path, **data) -> dict:
    stages = [{"modules": 1, "block": "bottleneck", "blocks": [1], "channels": [8]},
              {"modules": 1, "block": "basic", "blocks": [1, 1], "channels": [8, 16]},
              {"modules": 1, "block": "basic", "blocks": [1, 1, 1], "channels": [8, 16, 32]},
              {"modules": 1, "block": "basic", "blocks": [1, 1, 1, 1], "channels": [8, 16, 32, 64]}]
    return {"task": "detection",
            "model": {"arch": "hrnet_w18", "stages": stages, "stem_channels": 16},
            "data": {"train": str(annotations), "val": str(annotations), "min_size": 64, "max_size": 96,
                     "fpn_channels": 16, "representation_size": 32, **data},
            "optimizer": {"lr": 0.01},
            "train": {"epochs": 1, "batch_size": 2, "max_steps": 1, "workers": 0, "device": "cpu",
                      "plot": False, "progress": False},
            "eval": {"batch_size": 2}}


def test_train_eval_predict_through_the_engine_and_the_cli(tmp_path, tiny_coco, capsys):
    data = json.loads(tiny_coco.read_text())
    data["categories"][2]["name"] = "person"  # category 7 (label 2), for the person detector below
    tiny_coco.write_text(json.dumps(data))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(_recipe(tiny_coco)))
    assert main(["train", "--config", str(recipe), "--out-dir", str(tmp_path / "run")]) == 0
    epoch = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()][-1]
    assert epoch["step"] == 1 and "train_loss_objectness" in epoch
    trained = {key[4:]: value for key, value in epoch.items() if key.startswith("val/")}
    assert {"AP", "AP50", "AR100", "AR_large"} <= set(trained) and all(-1 <= v <= 1 for v in trained.values())
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["data"]["class_names"] == ["cat", "person"] and saved["data"]["category_ids"] == [3, 7]
    assert saved["model"]["num_classes"] == 3
    checkpoint = str(tmp_path / "run" / "last.pth")

    assert main(["eval", "--checkpoint", checkpoint, "--device", "cpu", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["AP"] == pytest.approx(trained["AP"])

    # Prediction needs no annotations: class names and categories come from the checkpoint.
    image = tiny_coco.parent / "img" / "0.png"
    (tiny_coco.parent / "copy.png").write_bytes(image.read_bytes())
    tiny_coco.unlink()
    out = tmp_path / "pred"
    assert main(["predict", str(tiny_coco.parent / "copy.png"), "--checkpoint", checkpoint, "--device", "cpu",
                 "--out-dir", str(out), "--set", "data.score_threshold=0.0"]) == 0
    printed = capsys.readouterr().out
    assert "copy.png:" in printed and "detections" in printed
    results = json.loads((out / "detections.json").read_text())
    assert results and {r["category_id"] for r in results} <= {3, 7} and (out / "copy.png").is_file()

    # The person boxes for top-down pose are the category-7 results, as x1, y1, x2, y2, score.
    predictor = Predictor(checkpoint, device="cpu")
    detector = predictor.task.person_detector(predictor.model, score_threshold=0.0)
    boxes = detector(read_image(tiny_coco.parent / "copy.png"))
    people = sorted(([x, y, x + w, y + h, r["score"]] for r in results if r["category_id"] == 7
                     for x, y, w, h in [r["bbox"]]), key=lambda r: -r[4])
    np.testing.assert_allclose(boxes, np.asarray(people, np.float32).reshape(-1, 5), atol=0.02)


def test_mask_rcnn_trains_on_masks_and_reports_mask_ap(tmp_path, tiny_coco):
    recipe = _recipe(tiny_coco)
    recipe["model"]["head"] = "mask_rcnn"
    config = config_from_dict(recipe)
    task = DetectionTask(config)
    assert "masks" in task.build_dataset("train")[0][1] and "masks" not in task.build_dataset("val")[0][1]
    summary = fit(config, tmp_path / "run")
    assert {"AP", "mask_AP", "mask_AP50", "mask_AR_large"} <= set(summary["metrics"])


@pytest.mark.parametrize("change, message", [
    ({"model": {"num_classes": 5}}, "model.num_classes is 5 but the data has 2 classes"),
    ({"model": {"head": "ocr"}}, "a detection model is one of faster_rcnn, mask_rcnn"),
    ({"data": {"flip": 2.0}}, "flip must be a probability"),
])
def test_bad_recipes_are_refused(tiny_coco, change, message):
    recipe = _recipe(tiny_coco)
    for section, values in change.items():
        recipe[section].update(values)
    with pytest.raises((ValueError, ConfigError), match=message):
        DetectionTask(config_from_dict(recipe))


@pytest.mark.parametrize("name", ["faster_rcnn_hrnetv2p_w18_1x.yaml", "faster_rcnn_hrnetv2p_w32_1x.yaml"])
def test_recipes_mirror_the_official_1x_schedule(name):
    config = load_config(RECIPES / name)
    assert config.task == "detection" and config.train.epochs == 12 and config.train.batch_size == 16
    assert config.optimizer.name == "sgd" and config.optimizer.lr == 0.02 and config.optimizer.momentum == 0.9
    assert config.optimizer.weight_decay == 1e-4 and config.train.clip_grad_norm == 35
    assert config.schedule.milestones == [8, 11]
    assert config.data.min_size == 800 and config.data.max_size == 1333 and config.data.backbone_norm == "norm_eval"
    assert config.model.spec().width == int(name.split("_w")[1][:2])
    # Official warmup (500 iterations from 1/3) and test-time RPN proposals (2000 before and after NMS).
    assert (config.schedule.warmup_iters, config.schedule.warmup_factor) == (500, 0.3333)
    options = config.data.detector_options
    assert options == {"rpn_pre_nms_top_n_test": 2000, "rpn_post_nms_top_n_test": 2000}
