"""Detection test-time flip: the mirror's boxes come back, the two views merge by class-wise NMS
(mmdetection's DetTTAModel rule), checked against a hand-written NMS; the evaluator records it;
a val json without `area` stops training before the first step, naming file, record and field."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from hrnet.engine import config_from_dict, fit
from hrnet.errors import DataError
from hrnet.tasks.detection.evaluate import CocoEvaluator, coco_metrics, load_coco, to_coco_results
from hrnet.tasks.detection.tta import detection_flip, flip_boxes



def _recipe(annotations, **data) -> dict:
    """A tiny Faster R-CNN on the tiny COCO set (as test_detection_task's)."""
    stages = [{"modules": 1, "block": "bottleneck", "blocks": [1], "channels": [8]},
              {"modules": 1, "block": "basic", "blocks": [1, 1], "channels": [8, 16]},
              {"modules": 1, "block": "basic", "blocks": [1, 1, 1], "channels": [8, 16, 32]},
              {"modules": 1, "block": "basic", "blocks": [1, 1, 1, 1], "channels": [8, 16, 32, 64]}]
    return {"task": "detection", "model": {"arch": "hrnet_w18", "stages": stages, "stem_channels": 16},
            "data": {"train": str(annotations), "val": str(annotations), "min_size": 64, "max_size": 96,
                     "fpn_channels": 16, "representation_size": 32, **data},
            "optimizer": {"lr": 0.01},
            "train": {"epochs": 1, "batch_size": 2, "max_steps": 1, "workers": 0, "device": "cpu", "plot": False},
            "eval": {"batch_size": 2}}


class Scripted(nn.Module):
    """A stand-in detector: the n-th call returns the n-th scripted list of per-image outputs."""

    def __init__(self, outputs: list[list[dict[str, torch.Tensor]]], nms: float = 0.5, top: int = 100):
        super().__init__()
        self.outputs, self.calls = outputs, []
        self.roi_heads = type("RoiHeads", (), {"nms_thresh": nms, "detections_per_img": top})()

    def forward(self, images):
        self.calls.append([image.clone() for image in images])
        return self.outputs[len(self.calls) - 1]


def _det(boxes, scores, labels):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32), "scores": torch.tensor(scores),
            "labels": torch.tensor(labels)}


def _iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _manual_merge(views, iou, top):
    """Concatenate, then greedy NMS per class, survivors best first."""
    rows = [(float(s), int(l), [float(v) for v in b]) for view in views
            for b, s, l in zip(view["boxes"], view["scores"], view["labels"])]
    rows.sort(key=lambda r: -r[0])
    kept = []
    for row in rows:
        if all(k[1] != row[1] or _iou(k[2], row[2]) <= iou for k in kept):
            kept.append(row)
    return kept[:top]


def test_flip_boxes_mirrors_x():
    boxes = torch.tensor([[10.0, 5.0, 30.0, 20.0], [0.0, 0.0, 100.0, 50.0]])
    assert flip_boxes(boxes, 100).tolist() == [[70.0, 5.0, 90.0, 20.0], [0.0, 0.0, 100.0, 50.0]]
    assert torch.equal(flip_boxes(flip_boxes(boxes, 100), 100), boxes)


def test_detection_flip_equals_a_manual_flip_and_merge():
    width = 100
    image = torch.rand(3, 60, width)
    plain = _det([[10, 10, 40, 40], [50, 10, 90, 50], [12, 12, 42, 38]], [0.9, 0.6, 0.5], [1, 2, 2])
    # In the mirror: the first object again (at x -> 100 - x), slightly shifted, and a new weak one.
    mirrored = _det([[61, 10, 91, 41], [5, 5, 15, 15]], [0.8, 0.3], [1, 1])
    model = Scripted([[plain], [mirrored]], nms=0.5, top=4)
    merged = detection_flip(model, [image])[0]
    assert torch.equal(model.calls[1][0], image.flip(-1))  # the second call saw the mirror
    back = {**mirrored, "boxes": torch.tensor([[100 - 91, 10, 100 - 61, 41], [100 - 15, 5, 100 - 5, 15]],
                                              dtype=torch.float32)}
    expected = _manual_merge([plain, back], iou=0.5, top=4)
    assert merged["scores"].tolist() == pytest.approx([r[0] for r in expected])
    assert merged["labels"].tolist() == [r[1] for r in expected]
    torch.testing.assert_close(merged["boxes"], torch.tensor([r[2] for r in expected]))
    # The mirror's copy of the first object is suppressed; the class-2 box over it is another class
    # and stays; the mirror's new weak object joins.
    assert merged["scores"].tolist() == pytest.approx([0.9, 0.6, 0.5, 0.3])


def test_detection_flip_brings_masks_back():
    image = torch.rand(3, 8, 10)
    mask = torch.zeros(1, 1, 8, 10)
    mask[..., :3] = 1  # the left edge, in the mirror: the right edge of the original
    model = Scripted([[_det(torch.zeros(0, 4).tolist(), [], []) | {"masks": torch.zeros(0, 1, 8, 10)}],
                      [_det([[0, 0, 3, 8]], [0.7], [1]) | {"masks": mask}]])
    merged = detection_flip(model, [image])[0]
    assert merged["boxes"].tolist() == [[7.0, 0.0, 10.0, 8.0]]
    assert merged["masks"][0, 0, :, 7:].eq(1).all() and merged["masks"][0, 0, :, :7].eq(0).all()


def test_the_evaluator_scores_the_merged_detections(voc_json):
    gt = load_coco(voc_json)
    categories = sorted(c["id"] for c in gt.dataset["categories"] if c["name"] != "_background_")
    image_info = gt.dataset["images"][0]
    width = image_info["width"]
    boxes = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
             for a in gt.dataset["annotations"] if a["image_id"] == image_info["id"]]
    labels = [categories.index(a["category_id"]) + 1 for a in gt.dataset["annotations"]
              if a["image_id"] == image_info["id"]]
    plain = _det(boxes[:1], [0.9], labels[:1])  # one object found in the image, the others in its mirror
    mirrored = _det([[width - b[2], b[1], width - b[0], b[3]] for b in boxes[1:]], [0.8] * (len(boxes) - 1),
                    labels[1:])
    image = torch.rand(3, image_info["height"], width)
    evaluator = CocoEvaluator(annotations=voc_json, category_ids=categories, flip=True)
    evaluator.update(Scripted([[plain], [mirrored]]), ([image], [{"image_id": image_info["id"]}]))
    evaluator.synchronize()
    merged = detection_flip(Scripted([[plain], [mirrored]]), [image])[0]
    expected = coco_metrics(gt, to_coco_results(merged, image_info["id"], categories), image_ids=[image_info["id"]])
    assert evaluator.compute() == expected and expected["AP"] > 0.9
    assert evaluator.how["flip"].startswith("image and mirror")
    assert CocoEvaluator(annotations=voc_json, category_ids=categories).how["flip"] == "off"


def test_a_val_json_without_area_fails_before_training(tmp_path, tiny_coco):
    data = json.loads(tiny_coco.read_text())
    del data["annotations"][2]["area"]
    val = tiny_coco.with_name("val.json")
    val.write_text(json.dumps(data))
    recipe = _recipe(tiny_coco)
    recipe["data"]["val"] = str(val)
    with pytest.raises(DataError, match=r"val\.json: annotations\[2\] \(id 3\) has no field 'area'"):
        fit(config_from_dict(recipe), tmp_path / "run")
    assert not (tmp_path / "run" / "last.pth").exists() and not (tmp_path / "run" / "log.jsonl").exists()


def test_recipe_test_flip_reaches_the_evaluator(tiny_coco):
    from hrnet.tasks.detection.task import DetectionTask

    task = DetectionTask(config_from_dict(_recipe(tiny_coco, test_flip=True)))
    assert task.make_evaluator(torch.device("cpu")).flip
