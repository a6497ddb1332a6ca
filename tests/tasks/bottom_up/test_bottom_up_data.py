"""COCO images for bottom-up pose: people, ignore masks from segmentations (pycocotools), training samples,
and clear errors for bad annotation files. Real data: the 4-image COCO sample (shared/data/coco_kpt)."""

import copy
import json
import logging

import numpy as np
import pytest
import torch

from hrnet.data.io import DataError
from hrnet.tasks.bottom_up.data import BottomUpDataset, ImageDataset, ignore_mask, load_coco_images
from hrnet.tasks.bottom_up.transforms import Augmentation, square_affine
from hrnet.tasks.pose.metadata import COCO_KEYPOINTS

STILL = Augmentation(max_rotation=0, min_scale=1, max_scale=1, max_translate=0, flip=0)  # the plain centre crop


def _coco(coco_dir):
    return json.loads((coco_dir / "test_coco.json").read_text())


def test_images_people_and_regions_to_ignore(coco_dir):
    records = load_coco_images(coco_dir / "test_coco.json", coco_dir, metadata=COCO_KEYPOINTS, with_people_only=True)
    by_id = {r.image_id: r for r in records}
    assert sorted(by_id) == [785, 40083, 196141, 197388]
    # every non-crowd person is kept, also the two without keypoints (which are masked out as well)
    assert [len(by_id[i].joints) for i in (785, 40083, 196141, 197388)] == [1, 3, 5, 5]
    assert [len(by_id[i].ignore) for i in (785, 40083, 196141, 197388)] == [0, 1, 1, 0]
    person = next(a for a in _coco(coco_dir)["annotations"] if a["id"] == 442619)
    np.testing.assert_array_equal(by_id[785].joints[0].reshape(-1), person["keypoints"])


def test_ignore_mask_is_the_decoded_segmentation(coco_dir):
    """Independently: pycocotools' own annToMask of the keypoint-less person 1202706."""
    from pycocotools.coco import COCO

    records = load_coco_images(coco_dir / "test_coco.json", coco_dir, metadata=COCO_KEYPOINTS, with_people_only=True)
    record = next(r for r in records if r.image_id == 40083)
    coco = COCO(str(coco_dir / "test_coco.json"))
    region = coco.annToMask(coco.loadAnns([1202706])[0]).astype(bool)
    mask = ignore_mask(record)
    assert mask.shape == (333, 500) and region.sum() > 100
    assert np.array_equal(mask, ~region)


def test_crowd_rle_and_a_file_without_segmentations(coco_dir, tmp_path, caplog):
    data = _coco(coco_dir)
    crowd = copy.deepcopy(next(a for a in data["annotations"] if a["id"] == 442619))
    # An uncompressed (column-major) RLE covering rows 5..24 of columns 10 and 11.
    rle = {"counts": [425 * 10 + 5, 20, 405, 20, 425 * 640 - 4700], "size": [425, 640]}
    crowd.update(id=1, iscrowd=1, num_keypoints=0, keypoints=[0] * 51, segmentation=rle)
    data["annotations"].append(crowd)
    (tmp_path / "crowd.json").write_text(json.dumps(data))
    records = load_coco_images(tmp_path / "crowd.json", coco_dir, metadata=COCO_KEYPOINTS, with_people_only=True)
    mask = ignore_mask(next(r for r in records if r.image_id == 785))
    assert not mask[5:25, 10:12].any() and mask[:5, 10:12].all() and mask[25:, 10:12].all() and mask[:, 12].all()
    assert len(next(r for r in records if r.image_id == 785).joints) == 1  # the crowd is not a person
    for ann in data["annotations"]:
        ann.pop("segmentation")
    (tmp_path / "plain.json").write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING, logger="hrnet"):
        records = load_coco_images(tmp_path / "plain.json", coco_dir, metadata=COCO_KEYPOINTS, with_people_only=True)
    warnings = [r for r in caplog.records if "segmentation" in r.getMessage()]
    assert len(warnings) == 1 and "3 crowd or keypoint-less" in warnings[0].getMessage()
    assert all(ignore_mask(r).all() for r in records)


@pytest.mark.parametrize("change, message", [
    (lambda d: d["images"][0].pop("height"), r"images\[0\] \(id 785\) field 'height' lacks it"),
    (lambda d: d["annotations"][0].update(keypoints=[1, 2]), r"\(id 442619\) field 'keypoints' holds 2 values; expected 51"),
    (lambda d: d["annotations"][0].update(image_id=5), r"\(id 442619\) field 'image_id' names image 5, which is not in"),
    (lambda d: d["annotations"][0].pop("image_id"), r"annotations\[0\] \(id 442619\) field 'image_id' lacks it"),
    (lambda d: d.pop("annotations"), "needs the lists 'images' and 'annotations'"),
    (lambda d: d["categories"][0].update(keypoints=["nose"]), "category 'person' has 1 keypoints but the metadata 'coco' has 17"),
])
def test_bad_annotation_files_name_the_record_and_field(coco_dir, tmp_path, change, message):
    data = _coco(coco_dir)
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=message) as error:
        load_coco_images(path, coco_dir, metadata=COCO_KEYPOINTS, with_people_only=True)
    assert str(path) in str(error.value)


def test_training_sample_targets_and_mask(coco_dir):
    records = load_coco_images(coco_dir / "test_coco.json", coco_dir, metadata=COCO_KEYPOINTS, with_people_only=True)
    record = next(r for r in records if r.image_id == 40083)  # 500 x 333, a keypoint-less person masked out
    sample = BottomUpDataset([record], metadata=COCO_KEYPOINTS, input_size=128, output_sizes=(32, 64), sigma=2,
                             max_people=30, augmentation=STILL)[0]
    assert sample["image"].shape == (3, 128, 128) and sample["image"].dtype == torch.float32
    assert [tuple(h.shape) for h in sample["heatmaps"]] == [(17, 32, 32), (17, 64, 64)]
    assert [tuple(m.shape) for m in sample["masks"]] == [(32, 32), (64, 64)]
    assert [tuple(j.shape) for j in sample["joints"]] == [(30, 17, 2), (30, 17, 2)]
    # the centre 333 x 333 crop: the masked person (box x 275..286, y 126..195) maps into the 64 map
    matrix = square_affine((250, 166.5), 333 / 200, 64, 0)
    x, y = matrix @ [280.5, 160, 1]
    assert sample["masks"][1][int(y), int(x)] == 0 and sample["masks"][1][5, 5] == 1
    # the nose of person 198196 is a heatmap peak at its truncated position
    nose = record.joints[0, 0]
    px, py = (matrix @ [nose[0], nose[1], 1]).astype(int)
    assert sample["heatmaps"][1][0, py, px] == 1.0
    assert sample["joints"][1][0, 0].tolist() == [py * 64 + px, 1]


def test_image_dataset_keeps_every_image_and_checks_sizes(coco_dir, tmp_path):
    records = load_coco_images(coco_dir / "test_coco.json", coco_dir, metadata=COCO_KEYPOINTS, with_people_only=False)
    sample = ImageDataset(records)[0]
    assert sample["image"].shape == (425, 640, 3) and sample["image"].dtype == np.uint8 and sample["image_id"] == 785
    records[0].width = 641
    with pytest.raises(DataError, match="641x425"):
        BottomUpDataset(records[:1], metadata=COCO_KEYPOINTS, input_size=64, output_sizes=(16, 32), sigma=2,
                        max_people=30, augmentation=STILL)[0]
