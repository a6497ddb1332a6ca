"""int8 calibration inputs: `--calibrate recipe:val` takes the run's own evaluation inputs (person
crops for top-down pose), a folder takes whole pictures."""

import pytest
import torch

from helpers import shared_data
from hrnet.data.io import DataError
from hrnet.engine import config_from_dict
from hrnet.runtime.calibration import calibration_batches, recipe_batches, source_batches
from hrnet.tasks import get_task


def _pose_config(coco):
    return config_from_dict({
        "task": "pose", "model": {"arch": "hrnet_w18_small_v1"},
        "data": {"train_annotations": str(coco / "test_coco.json"), "train_images": str(coco),
                 "val_annotations": str(coco / "test_coco.json"), "val_images": str(coco),
                 "input_size": [128, 96]},
        "train": {"workers": 0, "batch_size": 4}, "eval": {"batch_size": 4}})


def test_pose_calibrates_on_the_person_crops_evaluation_feeds(tmp_path):
    coco = shared_data("coco_kpt", "test_coco.json").parent
    config = _pose_config(coco)
    batches = recipe_batches(config, "val", limit=6)
    assert [tuple(b.shape) for b in batches] == [(4, 3, 128, 96), (2, 3, 128, 96)]
    # The same tensors as the val data set's samples, in order: the crops around each person box.
    dataset = get_task("pose")(config).build_dataset("val")
    expected = torch.stack([dataset[i]["image"] for i in range(6)])
    torch.testing.assert_close(torch.cat(batches), expected, rtol=0, atol=0)
    # A folder of the same pictures gives other inputs: each whole picture as one box.
    whole = torch.cat(calibration_batches("pose", coco, data=config.data, limit=6))
    assert whole.shape[1:] == expected.shape[1:] and not torch.allclose(whole, expected[: len(whole)])
    assert source_batches("pose", "recipe:val", config=config, limit=2)[0].shape == (2, 3, 128, 96)


def test_recipe_sources_that_cannot_work_are_clear(tmp_path):
    coco = shared_data("coco_kpt", "test_coco.json").parent
    config = _pose_config(coco)
    with pytest.raises(DataError, match="the split must be train or val"):
        recipe_batches(config, "test")
    with pytest.raises(DataError, match="no recipe to read the data from; give --checkpoint of a run"):
        source_batches("pose", "recipe:val", config=None)
    detection = config_from_dict({"task": "detection", "model": {"arch": "hrnet_w18"},
                                  "data": {"train": str(coco / "test_coco.json"), "train_images": str(coco)}})
    with pytest.raises(DataError, match="give a folder of typical images instead"):
        recipe_batches(detection, "val")
