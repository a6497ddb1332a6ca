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
from hrnet.engine.testing import coco_padded_to_squares, memorising_bottom_up_recipe


@pytest.mark.slow
def test_small_higher_hrnet_learns_the_real_people(tmp_path, coco_dir):
    annotations = coco_padded_to_squares(coco_dir, tmp_path)
    recipe = memorising_bottom_up_recipe(annotations, steps=600, repeat=10)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # this small model runs fastest on one thread
    try:
        summary = fit(config_from_dict(recipe), tmp_path / "run")
    finally:
        torch.set_num_threads(threads)
    assert summary["metrics"]["AP"] >= 0.9, summary["metrics"]
