"""Every task reads annotated images as stored, whatever their EXIF orientation tag (as the official
loaders, which pass IMREAD_IGNORE_ORIENTATION): annotation coordinates refer to the stored pixels."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import one_thread  # noqa: F401 (autouse)

STORED = (240, 320)  # rows, columns of the stored pixels; orientation 6 displays them as 320 x 240


@pytest.fixture
def tagged(tmp_path):
    """A JPEG stored 240 x 320 with a horizontal ramp (dark left) and EXIF orientation 6."""
    ramp = np.tile(np.linspace(0, 255, STORED[1], dtype=np.uint8), (STORED[0], 1))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "000000000001.jpg"
    Image.fromarray(np.stack([ramp] * 3, axis=2)).save(path, quality=95, exif=exif)
    return path


def test_classification_dataset(tagged):
    from hrnet.tasks.classification import ImageClassificationDataset

    image, _ = ImageClassificationDataset([(tagged, 0)], transform=lambda x: x)[0]
    assert tuple(image.shape) == (3, *STORED)


def test_segmentation_dataset_pairs_with_a_stored_size_mask(tagged, tmp_path):
    from hrnet.tasks.segmentation.classes import ClassList
    from hrnet.tasks.segmentation.data import SegmentationDataset

    Image.fromarray(np.zeros(STORED, np.uint8)).save(tmp_path / "mask.png")
    dataset = SegmentationDataset(pairs=[(tagged, tmp_path / "mask.png")], classes=ClassList(names=("a", "b")))
    sample = dataset[0]  # a rotated image would not match its mask's size
    assert tuple(sample["image"].shape[-2:]) == STORED == tuple(sample["mask"].shape)


def test_detection_dataset(tagged, tmp_path):
    from hrnet.tasks.detection.data import CocoDetection

    coco = {"images": [{"id": 1, "file_name": tagged.name, "width": STORED[1], "height": STORED[0]}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 200, 100], "iscrowd": 0,
                             "area": 20000}],
            "categories": [{"id": 1, "name": "thing"}]}
    (tmp_path / "instances.json").write_text(json.dumps(coco))
    image, target = CocoDetection(annotations=tmp_path / "instances.json")[0]
    assert tuple(image.shape[-2:]) == STORED
    assert target["boxes"].tolist() == [[10.0, 20.0, 210.0, 120.0]]


def test_pose_crop_comes_from_the_stored_pixels(tagged):
    from hrnet.tasks.pose.data import PersonRecord, PoseDataset
    from hrnet.tasks.pose.metadata import COCO_KEYPOINTS
    from hrnet.tasks.pose.transforms import box_to_center_scale

    # A person box at stored columns 10..50 (dark); displayed (rotated) those coordinates would be mid-grey.
    center, scale = box_to_center_scale([10, 100, 40, 40], 1.0, padding=1.0)
    record = PersonRecord(image=tagged, image_id=1, center=center, scale=scale, joints=np.zeros((17, 2), np.float32),
                          visible=np.zeros(17, np.float32))
    sample = PoseDataset([record], metadata=COCO_KEYPOINTS, input_size=(32, 32), heatmap_size=(8, 8), sigma=2)[0]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    pixels = (sample["image"] * std + mean) * 255
    assert pixels.mean() < 45  # columns 10..50 of a 0..255 ramp over 320 columns: about 24
