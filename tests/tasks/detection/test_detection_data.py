from __future__ import annotations

import json

import pytest
import torch

from hrnet.data.io import DataError
from hrnet.tasks.detection.data import CocoDetection, collate, hflip


def test_labels_skip_background_category_and_crowd_and_subpixel_boxes(tiny_coco):
    dataset = CocoDetection(annotations=tiny_coco, skip_empty=False)
    assert dataset.class_names == ["cat", "dog"] and dataset.num_classes == 3
    image, target = dataset[0]
    assert image.shape == (3, 64, 80) and image.dtype == torch.float32 and 0 <= image.min() and image.max() <= 1
    # The crowd box of image 10 is left out; the polygon box becomes x1y1x2y2 with label 1 (cat, id 3).
    assert target["boxes"].tolist() == [[10.0, 20.0, 40.0, 40.0]]
    assert target["labels"].tolist() == [1] and target["image_id"] == 10
    _, target = dataset[1]
    assert target["labels"].tolist() == [2]  # the 0.5-pixel-wide cat box is dropped


def test_images_without_boxes_are_kept_or_skipped(tiny_coco):
    assert len(CocoDetection(annotations=tiny_coco, skip_empty=False)) == 3
    skipped = CocoDetection(annotations=tiny_coco, skip_empty=True)
    assert [info["id"] for info in skipped.images] == [10, 11]
    _, target = CocoDetection(annotations=tiny_coco, skip_empty=False)[2]
    assert target["boxes"].shape == (0, 4) and target["labels"].shape == (0,)


def test_polygon_and_rle_masks_fill_their_boxes(tiny_coco):
    dataset = CocoDetection(annotations=tiny_coco, masks=True, skip_empty=False)
    for index, (x1, y1, x2, y2) in ((0, (10, 20, 40, 40)), (1, (20, 10, 40, 30))):
        _, target = dataset[index]
        mask = target["masks"][0]
        assert target["masks"].dtype == torch.uint8 and mask.shape == dataset[index][0].shape[1:]
        ys, xs = torch.nonzero(mask, as_tuple=True)
        assert abs(int(xs.min()) - x1) <= 1 and abs(int(xs.max()) + 1 - x2) <= 1
        assert abs(int(ys.min()) - y1) <= 1 and abs(int(ys.max()) + 1 - y2) <= 1
        assert abs(int(mask.sum()) - (x2 - x1) * (y2 - y1)) <= (x2 - x1) + (y2 - y1) + 1
    assert dataset[2][1]["masks"].shape == (0, 40, 40)


def test_flip_mirrors_image_boxes_and_masks_together(tiny_coco):
    dataset = CocoDetection(annotations=tiny_coco, masks=True)
    image, target = dataset[0]
    flipped, moved = hflip(image, target)
    assert moved["boxes"].tolist() == [[80 - 40.0, 20.0, 80 - 10.0, 40.0]]
    assert torch.equal(flipped[:, :, 0], image[:, :, -1])
    assert torch.equal(moved["masks"][0], target["masks"][0].flip(-1))
    always = CocoDetection(annotations=tiny_coco, masks=True, flip=1.0)
    image2, target2 = always[0]
    assert torch.equal(image2, flipped) and torch.equal(target2["boxes"], moved["boxes"])


def test_collate_keeps_different_sizes_as_lists(tiny_coco):
    dataset = CocoDetection(annotations=tiny_coco, skip_empty=False)
    images, targets = collate([dataset[0], dataset[1], dataset[2]])
    assert [tuple(i.shape) for i in images] == [(3, 64, 80), (3, 48, 64), (3, 40, 40)]
    assert [t["image_id"] for t in targets] == [10, 11, 12]


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("annotations"), "'annotations' is missing"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), "annotations[0] (id 1) field 'bbox' holds [1, 2, 3]"),
    (lambda d: d["annotations"][0].update(category_id=99), "category_id 99"),
    (lambda d: d["annotations"][0].update(image_id=99), "field 'image_id' names image 99, which is not in 'images'"),
])
def test_bad_json_names_the_field(tiny_coco, change, message):
    data = json.loads(tiny_coco.read_text())
    change(data)
    tiny_coco.write_text(json.dumps(data))
    with pytest.raises(DataError, match=str(tiny_coco).replace("\\", "\\\\")) as error:
        CocoDetection(annotations=tiny_coco)
    assert message in str(error.value)


def test_missing_image_names_the_file(tiny_coco):
    (tiny_coco.parent / "img" / "1.png").unlink()
    with pytest.raises(DataError, match=r"1 image file\(s\) of 'images' do not exist .*1\.png"):
        CocoDetection(annotations=tiny_coco)  # checked up front, before training starts
    dataset = CocoDetection(annotations=tiny_coco, check_files=False)
    with pytest.raises(DataError, match="1.png"):
        dataset[1]


def test_real_voc_instances_load_with_masks(voc_json):
    dataset = CocoDetection(annotations=voc_json, masks=True)
    assert len(dataset) == 3 and dataset.num_classes == 21  # 20 VOC classes + background
    targets = [dataset[i][1] for i in range(3)]
    assert sum(len(t["boxes"]) for t in targets) == 12
    person = dataset.class_names.index("person") + 1
    assert sum(int((t["labels"] == person).sum()) for t in targets) == 6
    for target in targets:
        boxes, masks = target["boxes"], target["masks"]
        # every mask lies inside its box (polygons and boxes come from the same labels)
        for box, mask in zip(boxes, masks):
            ys, xs = torch.nonzero(mask, as_tuple=True)
            assert xs.min() >= box[0] - 1 and xs.max() <= box[2] + 1
            assert ys.min() >= box[1] - 1 and ys.max() <= box[3] + 1
