import json

import cv2
import numpy as np
import pytest
import torch

import hrnet
from helpers import tiny_spec
from hrnet.data.io import VideoWriter, read_image, read_video, write_image
from hrnet.tasks.segmentation.classes import CAMVID


def _segmenter(**options) -> hrnet.Predictor:
    """A Predictor of a tiny random HRNetV2 with the CamVid classes; `options` replace inference settings."""
    torch.manual_seed(0)
    model = hrnet.create_model(tiny_spec(), task="segmentation", num_classes=CAMVID.num_classes).eval()
    recipe = {"task": "segmentation", "data": {"format": "camvid", "crop_size": [32, 32]}}
    return hrnet.Predictor(model, task="segmentation", config=recipe, device="cpu", **options)


def test_images_and_a_video_give_masks_overlays_and_a_results_file(tmp_path):
    rng = np.random.default_rng(0)
    write_image(tmp_path / "in" / "a.png", rng.integers(0, 255, (37, 53, 3), dtype=np.uint8))
    write_image(tmp_path / "in" / "sub" / "a.jpg", rng.integers(0, 255, (20, 30, 3), dtype=np.uint8))
    with VideoWriter(tmp_path / "in" / "clip.mp4", fps=5) as writer:
        for _ in range(3):
            writer.write(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8))
    inputs = [tmp_path / "in" / "a.png", tmp_path / "in" / "sub" / "a.jpg", tmp_path / "in" / "clip.mp4"]
    out = tmp_path / "out"
    summary = hrnet.write_predictions(_segmenter(base_size=32), inputs, out)
    results = summary.predictions
    assert [r.source for r in results] == [str(p) for p in inputs]
    labels = cv2.imread(str(out / "a_labels.png"), cv2.IMREAD_UNCHANGED)
    assert labels.shape == (37, 53)  # full input resolution although inference ran at 32 px
    mask = read_image(out / "a_mask.png")
    assert np.array_equal(mask, CAMVID.palette()[labels])
    assert read_image(out / "a_2_overlay.png").shape == (20, 30, 3)  # second "a": a distinct name
    frames, _, _ = read_video(out / "clip_overlay.mp4")
    assert len(list(frames)) == 3 and results[2].outputs["frames"] == 3
    summary = json.loads((out / "predictions.json").read_text())
    assert len(summary) == 3 and abs(sum(summary[0]["classes"].values()) - 1) < 1e-3


def test_sliding_window_prediction_keeps_the_image_size_and_gives_per_class_probabilities():
    image = np.random.default_rng(1).integers(0, 255, (40, 70, 3), dtype=np.uint8)
    result = _segmenter(mode="slide", crop_size=(32, 32))(image)
    assert result.labels.shape == (40, 70) and result.labels.max() < CAMVID.num_classes
    assert result.scores.shape == (CAMVID.num_classes, 40, 70)
    np.testing.assert_allclose(result.scores.sum(axis=0), 1.0, rtol=1e-5)
    assert np.array_equal(result.scores.argmax(axis=0), result.labels)
    assert result.how["mode"] == "slide" and result.draw().shape == (40, 70, 3)
    segments = result.to_json()["segments"]
    assert sum(s["area"] for s in segments) == 40 * 70
    with pytest.raises(hrnet.ConfigError, match="unknown segmentation option"):
        _segmenter(tiles=2)
