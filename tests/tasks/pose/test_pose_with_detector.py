"""`hrnet predict --detector DET --pose POSE image`: a detector's person boxes feed top-down pose."""

import json

import pytest
import torch
import yaml

from hrnet.cli import main
from hrnet.data.io import read_image
from hrnet.inference.loading import resolve_detector

TINY = [{"modules": 1, "block": "bottleneck", "blocks": [1], "channels": [8]},
        {"modules": 1, "block": "basic", "blocks": [1, 1], "channels": [8, 16]},
        {"modules": 1, "block": "basic", "blocks": [1, 1, 1], "channels": [8, 16, 32]},
        {"modules": 1, "block": "basic", "blocks": [1, 1, 1, 1], "channels": [8, 16, 32, 64]}]
TRAIN = {"epochs": 1, "batch_size": 2, "max_steps": 1, "workers": 0, "device": "cpu", "plot": False,
         "progress": False}


def _run(tmp_path, name, recipe):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["train", "--config", str(path), "--out-dir", str(tmp_path / name)]) == 0
    return tmp_path / name / "last.pth"


def test_detector_boxes_feed_the_pose_model(tmp_path, coco_dir):
    annotations = str(coco_dir / "test_coco.json")
    detector = _run(tmp_path, "det", {
        "task": "detection", "model": {"arch": "hrnet_w18", "stages": TINY, "stem_channels": 16},
        "data": {"train": annotations, "val": annotations, "min_size": 96, "max_size": 128, "fpn_channels": 16,
                 "representation_size": 32},
        "train": TRAIN, "eval": {"every": 0}})
    pose = _run(tmp_path, "pose", {
        "task": "pose", "model": {"arch": "hrnet_w18", "stages": TINY, "stem_channels": 16},
        "data": {"train_annotations": annotations, "train_images": str(coco_dir), "val_annotations": annotations,
                 "val_images": str(coco_dir), "input_size": [64, 48], "sigma": 1.0},
        "train": TRAIN, "eval": {"every": 0}})
    image = coco_dir / "000000000785.jpg"
    out = tmp_path / "out"
    assert main(["predict", "--detector", str(detector), "--pose", str(pose), str(image), "--out-dir", str(out),
                 "--set", "data.predict.box_score_threshold=0.0"]) == 0
    results = json.loads((out / "keypoints.json").read_text())
    boxes = resolve_detector(str(detector), device=torch.device("cpu"))[0](read_image(image), str(image))
    # A pose per detected person box (an untrained detector still proposes boxes at score >= 0), less
    # those OKS non-maximum suppression merges.
    assert 0 < len(results) <= len(boxes)
    assert all(len(r["keypoints"]) == 51 for r in results)
    assert (out / "000000000785.png").is_file()


def test_detector_needs_a_pose_model(tmp_path):
    with pytest.raises(SystemExit):
        main(["predict", "--detector", "det.pth", "image.jpg"])  # neither --pose nor --checkpoint
