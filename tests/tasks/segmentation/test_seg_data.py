from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hrnet.data.io import DataError, write_image
from hrnet.tasks.segmentation.classes import CAMVID, CITYSCAPES, ClassList
from hrnet.tasks.segmentation.data import SegmentationDataset, class_weights, find_pairs
from hrnet.tasks.segmentation.metrics import ConfusionMeter

THREE = ClassList(names=("a", "b", "c"))


def _pair(root: Path, name: str, mask: np.ndarray, image_size=None, image_dir="images", mask_dir="masks") -> None:
    height, width = image_size or mask.shape
    write_image(root / image_dir / f"{name}.jpg", np.full((height, width, 3), 100, np.uint8))
    (root / mask_dir).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / mask_dir / f"{name}.png"), mask.astype(np.uint8))


def test_generic_folders_pair_by_stem_and_load_train_ids(tmp_path):
    _pair(tmp_path, "x", np.array([[0, 1], [2, 255]]))
    pairs = find_pairs("generic", tmp_path, "train", image_dir="images", mask_dir="masks")
    sample = SegmentationDataset(pairs=pairs, classes=THREE)[0]
    assert sample["image"].shape == (3, 2, 2)
    assert sample["mask"].tolist() == [[0, 1], [2, 255]]


def test_image_without_mask_is_named(tmp_path):
    _pair(tmp_path, "x", np.zeros((4, 4)))
    write_image(tmp_path / "images" / "lonely.jpg", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DataError, match="lonely.png"):
        find_pairs("generic", tmp_path, "train", image_dir="images", mask_dir="masks")


def test_mask_of_another_size_is_reported_with_its_file(tmp_path):
    _pair(tmp_path, "x", np.zeros((4, 6)), image_size=(5, 6))
    dataset = SegmentationDataset(pairs=find_pairs("generic", tmp_path, "t", image_dir="images", mask_dir="masks"),
                                  classes=THREE)
    with pytest.raises(DataError, match=r"masks/x.png is 6x4 .* image .*x.jpg is 6x5"):
        dataset[0]
    assert len(dataset.check()) == 1 and "x.png" in dataset.check()[0]


def test_labels_outside_the_class_list_are_reported_with_the_file(tmp_path):
    _pair(tmp_path, "good", np.zeros((3, 3)))
    _pair(tmp_path, "bad", np.array([[0, 1, 7], [2, 9, 255], [0, 0, 0]]))
    dataset = SegmentationDataset(pairs=find_pairs("generic", tmp_path, "t", image_dir="images", mask_dir="masks"),
                                  classes=THREE)
    problems = dataset.check()
    assert len(problems) == 1 and "bad.png" in problems[0] and "[7, 9]" in problems[0]


def test_split_list_file_selects_pairs(tmp_path):
    _pair(tmp_path, "a", np.zeros((2, 2)))
    _pair(tmp_path, "b", np.ones((2, 2)))
    (tmp_path / "val.txt").write_text("images/b.jpg masks/b.png\n")
    pairs = find_pairs("generic", tmp_path, "val")
    assert [p[0].name for p in pairs] == ["b.jpg"]


def test_camvid_list_strips_the_segnet_prefix(tmp_path):
    _pair(tmp_path, "f1", np.full((2, 2), 11), image_dir="train", mask_dir="trainannot")
    (tmp_path / "train.txt").write_text("/SegNet/CamVid/train/f1.jpg /SegNet/CamVid/trainannot/f1.png\n")
    pairs = find_pairs("camvid", tmp_path, "train")
    assert pairs == [(tmp_path / "train" / "f1.jpg", tmp_path / "trainannot" / "f1.png")]
    assert SegmentationDataset(pairs=pairs, classes=CAMVID)[0]["mask"].unique().tolist() == [11]


def test_cityscapes_layout_maps_label_ids(tmp_path):
    image = tmp_path / "leftImg8bit" / "val" / "aachen" / "aachen_000000_000019_leftImg8bit.png"
    write_image(image, np.zeros((2, 2, 3), np.uint8))
    mask = tmp_path / "gtFine" / "val" / "aachen" / "aachen_000000_000019_gtFine_labelIds.png"
    mask.parent.mkdir(parents=True)
    cv2.imwrite(str(mask), np.array([[7, 26], [1, 33]], np.uint8))
    pairs = find_pairs("cityscapes", tmp_path, "val")
    assert pairs == [(image, mask)]
    assert SegmentationDataset(pairs=pairs, classes=CITYSCAPES)[0]["mask"].tolist() == [[0, 13], [255, 18]]


def test_missing_folder_and_unknown_format_are_clear(tmp_path):
    with pytest.raises(DataError, match="leftImg8bit/train.*does not exist"):
        find_pairs("cityscapes", tmp_path, "train")
    with pytest.raises(DataError, match="unknown data.format 'voc'"):
        find_pairs("voc", tmp_path, "train")


def test_class_weights_from_pixel_counts(tmp_path):
    _pair(tmp_path, "x", np.array([[0, 0, 0, 1], [0, 0, 0, 1], [2, 255, 255, 255]]))
    dataset = SegmentationDataset(pairs=find_pairs("generic", tmp_path, "t", image_dir="images", mask_dir="masks"),
                                  classes=THREE)
    counts = dataset.class_pixel_counts()
    assert counts.tolist() == [6, 2, 1]
    # median frequency balancing: median(6, 2, 1)/9 over each frequency
    np.testing.assert_allclose(class_weights(counts, "median_frequency"), [2 / 6, 1.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(class_weights(counts, "enet"), 1 / np.log(1.02 + counts / 9), rtol=1e-6)
    assert class_weights(counts, "none") is None


def test_voc_masks_load_with_ignore_255_and_ground_truth_scores_100(voc_dir):
    classes = ClassList.from_file(voc_dir / "class_names.txt")
    pairs = find_pairs("generic", voc_dir, "val", image_dir="JPEGImages", mask_dir="SegmentationClass")
    dataset = SegmentationDataset(pairs=pairs, classes=classes)
    assert len(dataset) == 3 and dataset.check() == []
    meter = ConfusionMeter(num_classes=classes.num_classes, ignore_index=255, names=classes.names)
    seen = set()
    for index in range(len(dataset)):
        mask = dataset[index]["mask"]
        seen |= set(mask.unique().tolist())
        meter.update(mask, mask)
    assert 255 in seen and {0, 15} <= seen  # background, person, and the void border
    metrics = meter.compute()
    assert metrics["mIoU_present"] == pytest.approx(100.0) and metrics["pixel_acc"] == pytest.approx(100.0)
    assert metrics["IoU/person"] == pytest.approx(100.0)
    # The official mean counts the classes absent from these 3 images as IoU 0.
    present = len(seen - {255})
    assert metrics["mIoU"] == pytest.approx(100.0 * present / 21)


def test_camvid_real_frames_load(camvid_dir):
    pairs = find_pairs("camvid", camvid_dir, "val")
    assert len(pairs) == 101
    sample = SegmentationDataset(pairs=pairs[:1], classes=CAMVID)[0]
    assert sample["image"].shape == (3, 360, 480) and sample["mask"].max() <= 11
    assert torch.is_floating_point(sample["image"])


def test_ade20k_layout_and_reduce_zero_label(tmp_path):
    from hrnet.tasks.segmentation.classes import ADE20K

    _pair(tmp_path, "ADE_val_00000001", np.array([[0, 1], [150, 12]]), image_dir="images/validation",
          mask_dir="annotations/validation")
    pairs = find_pairs("ade20k", tmp_path, "val")
    assert [p[1].name for p in pairs] == ["ADE_val_00000001.png"]
    assert SegmentationDataset(pairs=pairs, classes=ADE20K)[0]["mask"].tolist() == [[255, 0], [149, 11]]
