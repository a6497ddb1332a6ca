"""Training a small HRNet on the 12 labelled COCO persons and scoring them with COCO AP: only a
correct crop -> target -> decode -> back-projection -> evaluation chain gets AP >= 0.9."""

import pytest
import torch

from hrnet.engine import config_from_dict, fit


@pytest.mark.slow
def test_small_hrnet_learns_the_real_persons(tmp_path, coco_dir):
    channels = [16, 32, 64, 128]
    stages = [{"modules": 1, "block": "bottleneck", "blocks": [1], "channels": channels[:1]}] + [
        {"modules": 1, "block": "basic", "blocks": [1] * n, "channels": channels[:n]} for n in (2, 3, 4)]
    steps, repeat = 400, 10  # 40 epochs of 10 passes: fewer checkpoints to write
    recipe = {
        "task": "pose",
        "model": {"arch": "hrnet_w18_small_v1", "stem_channels": 32, "stages": stages},
        "data": {"train_annotations": str(coco_dir / "test_coco.json"), "train_images": str(coco_dir),
                 "val_annotations": str(coco_dir / "test_coco.json"), "val_images": str(coco_dir),
                 # 192 x 144 keeps the quantisation of the 48 x 36 heatmaps below the AP threshold.
                 "input_size": [192, 144], "sigma": 2.0, "augment": False, "train_repeat": repeat,
                 # Without flip augmentation in training, mirrored crops are unseen: no flip test.
                 "flip_test": False},
        "optimizer": {"name": "adam", "lr": 0.005, "weight_decay": 0.0},
        "schedule": {"name": "multistep", "milestones": [int(steps * 0.8) // repeat], "gamma": 0.1},
        "train": {"epochs": steps // repeat, "batch_size": 12, "workers": 0, "device": "cpu", "plot": False, "seed": 0},
        "eval": {"every": steps // repeat},
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # this small model runs fastest on one thread
    try:
        summary = fit(config_from_dict(recipe), tmp_path / "run")
    finally:
        torch.set_num_threads(threads)
    assert summary["metrics"]["AP"] >= 0.9, summary["metrics"]
