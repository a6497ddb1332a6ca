"""Small-data options of segmentation: aspect, rotation, colour jitter, blur and cutout keep image
and mask aligned; group-held-out validation (data.val_groups) on generic data and on CamVid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hrnet.data.io import write_image
from hrnet.engine import config_from_dict
from hrnet.errors import DataError
from hrnet.tasks.segmentation.task import SegmentationTask
from hrnet.tasks.segmentation.transforms import IMAGENET_MEAN, IMAGENET_STD, TrainTransform

MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)
CODES = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]], dtype=np.uint8)


def _coded_scene(height: int = 60, width: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """Four label regions (two quadrants split again by a diagonal), each painted in its code colour."""
    rows, cols = np.mgrid[:height, :width]
    labels = (rows >= height // 2).astype(np.int64) * 2 + (cols * height > rows * width).astype(np.int64)
    return CODES[labels], labels


def _label_of_colour(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) normalised -> (H, W) index of the nearest code colour."""
    rgb = ((image * STD + MEAN) * 255).permute(1, 2, 0).reshape(-1, 1, 3)
    distances = (rgb - torch.from_numpy(CODES).float()[None]).norm(dim=2)
    return distances.argmin(dim=1).reshape(image.shape[1:])


@pytest.mark.parametrize("options", [{"rotation": 30.0}, {"aspect_range": (0.5, 2.0)},
                                     {"rotation": 20.0, "aspect_range": (0.7, 1.4), "scale_range": (0.5, 2.0)}])
def test_geometric_options_keep_image_and_mask_aligned(options):
    image, labels = _coded_scene()
    transform = TrainTransform(crop_size=(48, 48), ignore_index=255, base_size=None, **options)
    for seed in range(6):
        torch.manual_seed(seed)
        out_image, out_labels = transform(image, labels)
        labelled = out_labels != 255
        agree = (_label_of_colour(out_image) == out_labels)[labelled].float().mean().item()
        # Only pixels on region borders may differ (bilinear image, nearest mask).
        assert labelled.any() and agree > 0.93, (seed, agree)
        black = ((out_image * STD + MEAN) * 255).round().sum(dim=0) == 0
        if black.any():  # uncovered corners and padding: black and ignored
            assert (out_labels[black] == 255).float().mean() > 0.9


def test_rotation_fills_the_corners_with_the_ignore_label():
    image, labels = _coded_scene(60, 60)
    transform = TrainTransform(crop_size=(60, 60), ignore_index=255, base_size=None, scale_range=(1.0, 1.0),
                               flip=False, rotation=45.0)
    torch.manual_seed(3)
    _, out_labels = transform(image, labels)
    assert out_labels[0, 0] == 255 and out_labels[30, 30] != 255


def test_photometric_options_change_the_image_only():
    image, labels = _coded_scene()
    plain = TrainTransform(crop_size=(48, 48), ignore_index=255, base_size=None)
    jittered = TrainTransform(crop_size=(48, 48), ignore_index=255, base_size=None,
                              color_jitter=(0.4, 0.4, 0.4, 0.1), blur=1.0)
    torch.manual_seed(0)
    a_image, a_labels = plain(image, labels)
    torch.manual_seed(0)
    b_image, b_labels = jittered(image, labels)
    assert torch.equal(a_labels, b_labels) and not torch.allclose(a_image, b_image, atol=1e-3)


def test_cutout_blanks_a_square_of_the_image_and_keeps_the_labels():
    image, labels = _coded_scene()
    plain = TrainTransform(crop_size=(48, 48), ignore_index=255, base_size=None)
    holed = TrainTransform(crop_size=(48, 48), ignore_index=255, base_size=None, cutout=0.25)
    torch.manual_seed(2)
    a_image, a_labels = plain(image, labels)
    torch.manual_seed(2)
    b_image, b_labels = holed(image, labels)
    assert torch.equal(a_labels, b_labels)
    changed = (a_image != b_image).any(dim=0)
    assert (b_image[:, changed] == 0).all()  # the mean colour after normalising
    rows, cols = changed.nonzero(as_tuple=True)
    assert 1 <= rows.max() - rows.min() + 1 <= 12 and 1 <= cols.max() - cols.min() + 1 <= 12  # 0.25 x 48
    assert changed.sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # a rectangle


def _sequences(root: Path) -> Path:
    """Generic data whose train images belong to sequences seqA_ (3), seqB_ (2) and a folder town/ (2)."""
    rng = np.random.default_rng(0)
    names = ["seqA_001", "seqA_002", "seqA_003", "seqB_001", "seqB_002", "town/x_001", "town/x_002"]
    for split, split_names in (("train", names), ("val", ["v_001"])):
        for name in split_names:
            write_image(root / "images" / split / f"{name}.png", rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
            write_image(root / "masks" / split / f"{name}.png", rng.integers(0, 2, (16, 16), dtype=np.uint8))
    (root / "classes.txt").write_text("a\nb\n")
    return root


def _task(root: Path, recipe, **data) -> SegmentationTask:
    return SegmentationTask(config_from_dict(recipe(root, **data)))


def test_val_groups_hold_whole_groups_of_the_train_split_out(tmp_path, recipe):
    root = _sequences(tmp_path)
    task = _task(root, recipe, val_groups=["seqB_", "town/"])
    train, val = task.build_dataset("train"), task.build_dataset("val")
    assert [p[0].stem for p in train.pairs] == ["seqA_001", "seqA_002", "seqA_003"]
    assert sorted(p[0].stem for p in val.pairs) == ["seqB_001", "seqB_002", "x_001", "x_002"]
    assert "groups seqB_, town/ held out of the train split" in task.make_evaluator(torch.device("cpu")).how["val_set"]
    plain = _task(root, recipe)
    assert [p[0].stem for p in plain.build_dataset("val").pairs] == ["v_001"]
    with pytest.raises(DataError, match=r"no train image's file name starts with 'seqC_'.*seqA_00"):
        _task(root, recipe, val_groups=["seqC_"]).build_dataset("train")
    with pytest.raises(DataError, match="hold out every train image"):
        _task(root, recipe, val_groups=["seq", "town/"]).build_dataset("val")


def test_camvid_leave_one_sequence_out(camvid_dir, recipe):
    task = SegmentationTask(config_from_dict({**recipe(camvid_dir), "data": {
        "format": "camvid", "root": str(camvid_dir), "crop_size": [64, 64], "val_groups": ["0006R0_"]}}))
    train, val = task.build_dataset("train"), task.build_dataset("val")
    assert len(train) == 367 - 101 and len(val) == 101
    assert {p[0].name[:7] for p in val.pairs} == {"0006R0_"}
    assert not {p[0].name[:7] for p in train.pairs} & {"0006R0_"}


def test_missing_listed_files_fail_when_the_dataset_is_built(tmp_path, recipe):
    root = _sequences(tmp_path)
    (root / "train.txt").write_text("images/train/seqA_001.png masks/train/seqA_001.png\n"
                                    "images/train/gone.png masks/train/gone.png\n")
    with pytest.raises(DataError, match=r"2 file\(s\) of the train set do not exist \(e\.g\. .*gone\.png"):
        _task(root, recipe).build_dataset("train")
