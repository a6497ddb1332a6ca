from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hrnet.data.io import VideoWriter, read_image
from hrnet.tasks.detection.evaluate import coco_metrics, load_coco
import hrnet
from hrnet.tasks.detection.predict import detect, person_boxes, person_label_of


def predict(model, inputs, out, *, class_names, category_ids, score_threshold):
    """`hrnet predict`'s folder output through a Predictor of `model`."""
    recipe = {"task": "detection", "data": {"class_names": class_names, "category_ids": category_ids,
                                            "score_threshold": score_threshold}}
    predictor = hrnet.Predictor(model, task="detection", config=recipe, device="cpu")
    return hrnet.write_predictions(predictor, inputs, out).predictions
from hrnet.tasks.detection.visualize import draw_detections, label_color


class _Fixed(nn.Module):
    """A stand-in detector: the same three detections on every image (boxes relative to its size)."""

    def __init__(self, masks: bool = False):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))
        self.masks = masks

    def forward(self, images):
        outputs = []
        for image in images:
            height, width = image.shape[-2:]
            boxes = torch.tensor([[0.1, 0.1, 0.5, 0.6], [0.5, 0.2, 0.9, 0.9], [0.0, 0.0, 0.2, 0.2]])
            boxes = boxes * torch.tensor([width, height, width, height])
            output = {"boxes": boxes, "labels": torch.tensor([1, 2, 1]), "scores": torch.tensor([0.6, 0.9, 0.1])}
            if self.masks:
                output["masks"] = torch.zeros(3, 1, height, width)
                for mask, (x1, y1, x2, y2) in zip(output["masks"], boxes.int().tolist()):
                    mask[0, y1:y2, x1:x2] = 0.8
            outputs.append(output)
        return outputs


def test_person_boxes_keep_people_above_the_threshold_best_first():
    image = np.zeros((100, 200, 3), np.uint8)
    rows = person_boxes(_Fixed(), image, person_label=1, score_threshold=0.05)
    assert rows.shape == (2, 5) and rows.dtype == np.float32
    np.testing.assert_allclose(rows[0], [20, 10, 100, 60, 0.6], rtol=1e-5)  # x1, y1, x2, y2, score
    np.testing.assert_allclose(rows[1, 4], 0.1, rtol=1e-5)
    assert len(person_boxes(_Fixed(), image, person_label=1, score_threshold=0.5)) == 1
    assert person_boxes(_Fixed(), image, person_label=3).shape == (0, 5)
    assert person_label_of(["bicycle", "person"]) == 2
    with pytest.raises(ValueError, match="no 'person' class"):
        person_label_of(["cat", "dog"])


def test_drawing_colours_boxes_and_tints_masks_without_touching_the_input():
    image = np.full((60, 80, 3), 255, np.uint8)
    mask = np.zeros((1, 60, 80), bool)
    mask[0, 30:50, 40:70] = True
    picture = draw_detections(image, np.array([[40, 30, 70, 50]]), [3], scores=[0.5], masks=mask,
                              class_names=["a", "b", "c"])
    assert (image == 255).all() and picture.shape == image.shape
    assert tuple(picture[45, 40]) == label_color(3)  # the box's left edge
    inside = picture[40, 55].astype(int)  # tinted towards the class colour, not covered
    assert (inside < 255).any() and (inside > np.array(label_color(3))).any()
    assert (picture[5, 5] == 255).all()


def test_predict_writes_pictures_and_coco_results_for_images_and_videos(tmp_path, voc_json):
    frames = tmp_path / "clip.mp4"
    with VideoWriter(frames, fps=5) as writer:
        for _ in range(3):
            writer.write(np.full((64, 96, 3), 128, np.uint8))
    images = sorted((voc_json.parent / "JPEGImages").glob("*.jpg"))[:2]
    (tmp_path / "again").mkdir()
    images.append(tmp_path / "again" / images[0].name)  # a second file of the same name
    images[-1].write_bytes(images[0].read_bytes())
    out = tmp_path / "out"
    predictions = predict(_Fixed(masks=True), [*images, frames], out, class_names=["cat", "dog"],
                          category_ids=[17, 18], score_threshold=0.3)
    assert [p.source for p in predictions] == [str(p) for p in (*images, frames)]
    first = predictions[0]
    assert first.outputs["line"] == "2 detections: cat 0.60, dog 0.90"
    assert read_image(first.picture).shape == read_image(images[0]).shape
    assert predictions[3].outputs["frames"] == 3 and predictions[3].picture.endswith("clip.mp4")
    assert predictions[2].picture != predictions[0].picture and Path(predictions[2].picture).is_file()
    results = json.loads((out / "detections.json").read_text())
    assert len(results) == 3 * 2 + 3 * 2
    assert {r["category_id"] for r in results} == {17, 18}
    assert sorted({r.get("frame") for r in results if r["file_name"] == "clip.mp4"}) == [0, 1, 2]
    assert all(set(r) >= {"image_id", "bbox", "score", "segmentation"} for r in results)


def test_predicted_results_evaluate_with_pycocotools(tmp_path, coco_kpt_json):
    """The results json of COCO images (named by id) reads back into COCOeval."""
    images = sorted(coco_kpt_json.parent.glob("*.jpg"))
    predict(_Fixed(), images, tmp_path, class_names=["person", "bicycle"], category_ids=[1, 2], score_threshold=0.0)
    results = json.loads((tmp_path / "detections.json").read_text())
    gt = load_coco(coco_kpt_json)
    assert {r["image_id"] for r in results} == set(gt.getImgIds())
    metrics = coco_metrics(gt, [{k: v for k, v in r.items() if k != "file_name"} for r in results])
    assert 0 <= metrics["AP"] < 0.5


def test_detect_on_a_real_detector_returns_numpy_per_image(tiny_det, small):
    from hrnet.detectors import build_detector

    model = build_detector(tiny_det, num_classes=3, detector="mask_rcnn", box_detections_per_img=5, **small)
    found = detect(model, [np.zeros((50, 70, 3), np.uint8), np.zeros((40, 30, 3), np.uint8)], score_threshold=0.0)
    assert [f["masks"].shape[1:] for f in found] == [(50, 70), (40, 30)]
    assert all(f["boxes"].shape == (len(f["scores"]), 4) and f["masks"].dtype == bool for f in found)
