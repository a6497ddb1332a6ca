import json

import numpy as np
import pytest
import torch
from torch import nn

import hrnet
from hrnet.data.io import VideoWriter, read_image, write_image
from hrnet.tasks.pose.metadata import COCO_KEYPOINTS
from hrnet.tasks.pose.predict import estimate_poses
from hrnet.tasks.pose.visualize import draw_poses


class CenterPeak(nn.Module):
    """A stand-in pose model: every keypoint's heatmap peaks at the crop center."""

    def __init__(self, keypoints=17):
        super().__init__()
        self.keypoints = keypoints
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        n, _, h, w = x.shape
        out = torch.zeros(n, self.keypoints, h // 4, w // 4)
        out[:, :, h // 8, w // 8] = 0.9
        return out + self.dummy


def image_with_noise(height=120, width=160):
    return np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)


def _predictor(**data):
    """A Predictor of the CenterPeak model with a 64x48 input (data: the recipe's data section)."""
    recipe = {"task": "pose", "data": {"input_size": [64, 48], **data}}
    return hrnet.Predictor(CenterPeak(), task="pose", config=recipe, device="cpu")


def test_keypoints_come_back_at_the_box_centers():
    boxes = np.array([[10.0, 20, 40, 80, 0.8], [100, 10, 140, 110, 0.6]])  # x1, y1, x2, y2, score
    found = estimate_poses(CenterPeak(), image_with_noise(), boxes, metadata=COCO_KEYPOINTS, input_size=(48, 64))
    # Flip test: the mirrored peak (column 5 of 12) shifted by one lands back on column 6 = center.
    np.testing.assert_allclose(found["keypoints"][:, :, :2], np.array([[25, 50], [120, 60]])[:, None].repeat(17, 1),
                               atol=1e-4)
    np.testing.assert_allclose(found["scores"], [0.8 * 0.9, 0.6 * 0.9], rtol=1e-6)
    assert found["heatmaps"].shape == (2, 17, 16, 12) and found["crops"].shape == (2, 64, 48, 3)
    empty = estimate_poses(CenterPeak(), image_with_noise(), np.zeros((0, 5)), metadata=COCO_KEYPOINTS,
                           input_size=(48, 64))
    assert empty["keypoints"].shape == (0, 17, 3)


def test_predict_images_with_boxes_from_a_results_file(tmp_path):
    write_image(tmp_path / "000000000042.png", image_with_noise())
    write_image(tmp_path / "other.png", image_with_noise())
    (tmp_path / "boxes.json").write_text(json.dumps([
        {"image_id": 42, "category_id": 1, "bbox": [10, 20, 30, 60], "score": 0.9},
        {"image_id": 42, "category_id": 1, "bbox": [100, 10, 40, 100], "score": 0.2},  # below threshold
        {"image_id": 42, "category_id": 3, "bbox": [0, 0, 10, 10], "score": 0.9},  # not a person
        {"file_name": "other.png", "bbox": [0, 0, 80, 60], "score": 1.0},
    ]))
    predictor = _predictor(predict={"boxes": str(tmp_path / "boxes.json"), "box_score_threshold": 0.5,
                                    "heatmaps": True})
    summary = hrnet.write_predictions(predictor, [tmp_path / "000000000042.png", tmp_path / "other.png"],
                                      tmp_path / "out")
    results = json.loads((tmp_path / "out" / "keypoints.json").read_text())
    assert [r["image_id"] for r in results] == [42, 1] and [r["file_name"] for r in results][1] == "other.png"
    assert results[0]["keypoints"][:3] == pytest.approx([25, 50, 0.9], abs=1e-3)
    assert results[0]["box"] == pytest.approx([10, 20, 30, 60, 0.9])
    assert results[1]["keypoints"][:2] == pytest.approx([40, 30], abs=1e-3)
    drawn = read_image(summary.predictions[0].picture)
    assert drawn.shape == (120, 160, 3) and not np.array_equal(drawn, image_with_noise())
    assert (tmp_path / "out" / "000000000042_heatmaps.png").is_file()
    assert summary.lines[0].endswith("1 person(s), best score 0.810; picture " + str(tmp_path / "out" /
                                                                                     "000000000042.png"))


def test_predict_video_writes_mp4_and_frames(tmp_path):
    video = tmp_path / "clip.mp4"
    with VideoWriter(video, fps=5) as writer:
        for _ in range(3):
            writer.write(image_with_noise())
    summary = hrnet.write_predictions(_predictor(), [video], tmp_path / "out")
    persons = json.loads((tmp_path / "out" / "keypoints.json").read_text())
    assert [p["frame"] for p in persons] == [0, 1, 2]
    assert persons[0]["keypoints"][:2] == pytest.approx([80, 60], abs=1e-3)
    assert summary.predictions[0].picture.endswith("clip.mp4") and (tmp_path / "out" / "clip.mp4").stat().st_size > 0


def test_user_boxes_a_detector_function_or_the_whole_image():
    image = image_with_noise()
    whole = _predictor()(image)
    assert whole.how["boxes"] == "whole image" and whole.keypoints[0, 0] == pytest.approx([80, 60], abs=1e-3)
    given = _predictor()(image, boxes=[[10, 20, 40, 80], [100, 10, 140, 110]])
    np.testing.assert_allclose(sorted(given.keypoints[:, 0].tolist()), [[25, 50], [120, 60]], atol=1e-3)
    assert given.boxes.shape == (2, 4) and given.how["boxes"] == "given"
    detected = hrnet.Predictor(CenterPeak(), task="pose", config={"task": "pose", "data": {"input_size": [64, 48]}},
                               device="cpu", detector=lambda rgb: np.array([[100, 10, 140, 110, 0.7]]))(image)
    assert detected.scores == pytest.approx([0.7 * 0.9]) and "detector" in detected.how["boxes"]
    with pytest.raises(hrnet.DataError, match=r"\(N, 4\) or \(N, 5\)"):
        _predictor()(image, boxes=np.zeros((2, 3)))
    with pytest.raises(hrnet.DataError, match="x1 < x2"):
        _predictor()(image, boxes=[[50, 10, 40, 80]])


def test_draw_poses_skips_low_scores():
    image = np.zeros((50, 50, 3), np.uint8)
    keypoints = np.zeros((1, 17, 3))
    keypoints[0, :, :2] = 25
    assert draw_poses(image, keypoints, COCO_KEYPOINTS).sum() == 0  # every score 0 < 0.2
    keypoints[0, 0, 2] = 0.5
    assert draw_poses(image, keypoints, COCO_KEYPOINTS)[25, 25].sum() > 0
