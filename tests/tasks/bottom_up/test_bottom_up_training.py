"""Training a small HigherHRNet on the 4 real COCO images (12 labelled people) and scoring them with COCO AP:
only a correct targets -> loss -> test resize -> grouping -> back-projection -> evaluation chain gets AP >= 0.9.

The images are padded to squares at the bottom and right (the annotations stay as they are, only width and
height change): then the training input (the square's affine) and the test input (the short side resized) are
the same picture, and a small network memorises the 12 people within a CPU budget instead of first having to
learn translation invariance. The non-square test geometry (long side rounded to 64) is checked by
`test_bottom_up_inference.py`'s oracle network.
"""

import pytest
import torch

from hrnet.engine import config_from_dict, fit
from hrnet.engine.testing import coco_padded_to_squares


@pytest.mark.slow
def test_small_higher_hrnet_learns_the_real_people(tmp_path, coco_dir):
    annotations = coco_padded_to_squares(coco_dir, tmp_path)
    channels = [16, 32, 64, 128]
    stages = [{"modules": 1, "block": "bottleneck", "blocks": [1], "channels": channels[:1]}] + [
        {"modules": 1, "block": "basic", "blocks": [1] * n, "channels": channels[:n]} for n in (2, 3, 4)]
    steps, repeat = 600, 10  # 4 images x 10 passes: one batch of 4 per step, 10 steps per epoch
    epochs = steps // repeat
    recipe = {
        "task": "bottom_up_pose",
        "model": {"arch": "hrnet_w18_small_v1", "stem_channels": 32, "stages": stages},
        "data": {"train_annotations": str(annotations), "train_images": str(tmp_path),
                 "val_annotations": str(annotations), "val_images": str(tmp_path), "train_repeat": repeat,
                 # The official targets, losses and factors; the augmentation off (memorising), so no flip test.
                 "input_size": 320, "max_rotation": 0.0, "min_scale": 1.0, "max_scale": 1.0, "max_translate": 0.0,
                 "flip": 0.0, "test": {"flip": False}},
        "optimizer": {"name": "adam", "lr": 0.005, "weight_decay": 0.0},
        "schedule": {"name": "multistep", "milestones": [int(epochs * 0.8)], "gamma": 0.1, "warmup_iters": 20},
        "train": {"epochs": epochs, "batch_size": 4, "workers": 0, "device": "cpu", "plot": False, "seed": 0},
        "eval": {"every": epochs},
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # this small model runs fastest on one thread
    try:
        summary = fit(config_from_dict(recipe), tmp_path / "run")
    finally:
        torch.set_num_threads(threads)
    assert summary["metrics"]["AP"] >= 0.9, summary["metrics"]
