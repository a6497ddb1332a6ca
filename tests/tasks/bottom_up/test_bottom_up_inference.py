"""The official test pipeline end to end with an oracle network (`conftest.Oracle`: what a perfect model
outputs at each scale and for the mirrored image): resize, outputs merged across resolutions, flip
test, projection to the image, scales, grouping, back-projection and COCO AP on the 4 real images.
A wrong coordinate convention, flip index or back-projection costs AP here."""

import numpy as np
import pytest
import torch

import hrnet
from hrnet.data.io import DataError, read_image
from hrnet.errors import ConfigError
from hrnet.tasks.bottom_up.evaluate import BottomUpEvaluator, coco_results
from hrnet.tasks.bottom_up.inference import BottomUpSettings, draw_people, flip_back, predict_people, stage_outputs
from hrnet.tasks.bottom_up.data import load_coco_images
from hrnet.tasks.pose.evaluate import coco_keypoint_ap
from hrnet.tasks.pose.metadata import COCO_KEYPOINTS
from helpers import tiny_spec


def _records(coco_dir):
    return load_coco_images(coco_dir / "test_coco.json", coco_dir, metadata=COCO_KEYPOINTS, with_people_only=False)


@pytest.mark.parametrize("settings", [BottomUpSettings(input_size=256, flip=False),
                                      BottomUpSettings(input_size=256, flip=True, refine=False),
                                      BottomUpSettings(input_size=256, scales=(0.5, 1.0, 2.0), flip=True)],
                         ids=["plain", "flip", "multi-scale+flip"])
def test_a_perfect_network_scores_ap_1_on_the_real_images(coco_dir, oracle, settings):
    evaluator = BottomUpEvaluator(annotations=str(coco_dir / "test_coco.json"), metadata=COCO_KEYPOINTS,
                                  settings=settings)
    for index, record in enumerate(_records(coco_dir)):
        image = read_image(record.path)
        model = oracle(image, record.joints, input_size=settings.size, scales=settings.scales)
        evaluator.update(model, [{"image": image, "image_id": record.image_id, "index": index}])
    evaluator.synchronize()
    metrics = evaluator.compute()
    assert metrics["AP"] == 1.0 and metrics["AR"] == 1.0 and len(metrics) == 10
    how = evaluator.result.how
    assert how["people"] == 12 and how["images"] == 4 and how["flip_test"] == settings.flip
    assert how["scales"] == list(settings.scales) and how["project_to_image"] and "munkres" in how["assignment"]


def test_keypoints_land_within_a_pixel_of_the_labels(coco_dir, oracle):
    record = next(r for r in _records(coco_dir) if r.image_id == 196141)  # 5 people, one of 30 x 96 pixels
    image = read_image(record.path)
    settings = BottomUpSettings(input_size=512)
    keypoints, scores = predict_people(oracle(image, record.joints, input_size=512), image, settings)
    labelled = [p for p in record.joints if (p[:, 2] > 0).any()]
    assert keypoints.shape == (len(labelled), 17, 3) and scores.shape == (len(labelled),)
    for found in keypoints:
        truth = min(labelled, key=lambda p: np.abs(found[p[:, 2] > 0, :2] - p[p[:, 2] > 0, :2]).mean())
        seen = truth[:, 2] > 0
        # half a pixel of the 512-short-side input (< 0.5 x 429 / 512 original pixels) plus the quarter offset
        assert np.abs(found[seen, :2] - truth[seen, :2]).max() < 0.65
        assert (found[seen, 2] > 0.5).all()


def test_merging_outputs_and_mirroring_back():
    """Output 0 (1/4, heatmaps + tags) is upsampled to output 1 (1/2) and averaged with it; the
    mirrored pass is flipped back with left and right swapped (heatmaps and tags)."""
    low = torch.zeros(1, 4, 2, 2)
    low[0, :2] = 1.0
    low[0, 2:] = torch.tensor([[[5.0, 5.0], [5.0, 5.0]], [[7.0, 7.0], [7.0, 7.0]]])
    high = torch.zeros(1, 2, 4, 4)
    high[0, 0, 0, 0] = 1.0
    heatmaps, tags = stage_outputs([low, high], num_joints=2, with_ae=(True, False))
    assert heatmaps.shape == (1, 2, 4, 4) and heatmaps[0, 0, 0, 0] == 1.0 and heatmaps[0, 1, 0, 0] == 0.5
    assert len(tags) == 1 and tags[0].shape == (1, 2, 4, 4) and tags[0][0, 1].unique().tolist() == [7.0]
    flipped, flipped_tags = flip_back(heatmaps, tags, [1, 0], tag_per_joint=True)
    assert flipped[0, 1, 0, 3] == 1.0 and flipped[0, 0, 0, 3] == 0.5  # mirrored, channels swapped
    assert flipped_tags[0][0, 0].unique().tolist() == [7.0]


def test_no_people_and_tiny_images(coco_dir):
    torch.manual_seed(0)
    model = hrnet.create_model(tiny_spec(), task="bottom_up_pose").eval()
    with torch.no_grad():
        for param in model.head.final_layers.parameters():
            param.zero_()  # heatmaps 0 everywhere: nobody
    image = read_image(coco_dir / "000000000785.jpg")
    keypoints, scores = predict_people(model, image, BottomUpSettings(input_size=64))
    assert keypoints.shape == (0, 17, 3) and scores.shape == (0,)
    tiny = np.full((3, 5, 3), 128, np.uint8)  # smaller than the network's stride of 32
    keypoints, scores = predict_people(model, tiny, BottomUpSettings(input_size=64))
    assert keypoints.shape == (0, 17, 3)
    evaluator = BottomUpEvaluator(annotations=str(coco_dir / "test_coco.json"), metadata=COCO_KEYPOINTS,
                                  settings=BottomUpSettings(input_size=64))
    evaluator.update(model, [{"image": tiny, "image_id": 785, "index": 0}])
    evaluator.synchronize()
    assert evaluator.compute()["AP"] == 0.0 and evaluator.result.how["people"] == 0
    with pytest.raises(DataError, match="RGB uint8"):
        predict_people(model, np.zeros((8, 8)), BottomUpSettings())
    with pytest.raises(DataError, match="empty"):
        predict_people(model, np.zeros((0, 8, 3), np.uint8), BottomUpSettings())


def test_an_untrained_network_runs_through_every_setting(coco_dir):
    torch.manual_seed(0)
    model = hrnet.create_model(tiny_spec(), task="bottom_up_pose").eval()
    image = read_image(coco_dir / "000000040083.jpg")
    for settings in (BottomUpSettings(input_size=64, scales=(0.5, 1.0)),
                     BottomUpSettings(input_size=64, flip=False, adjust=False, refine=False, max_people=5)):
        keypoints, scores = predict_people(model, image, settings)
        assert keypoints.shape[1:] == (17, 3) and len(scores) == len(keypoints)
    drawn = draw_people(image, keypoints)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    results = coco_results(40083, keypoints, scores)
    assert all(len(r["keypoints"]) == 51 and r["category_id"] == 1 for r in results)
    assert coco_keypoint_ap(str(coco_dir / "test_coco.json"), results, metadata=COCO_KEYPOINTS)[0]["AP"] >= 0


def test_settings_are_checked_and_unknown_options_raise():
    settings = BottomUpSettings()
    assert settings.size == 512 and settings.with_options(flip=False).flip is False
    with pytest.raises(ConfigError, match="unknown bottom-up inference option.*'flip_test'.*known: input_size"):
        settings.with_options(flip_test=False)
    with pytest.raises(ConfigError, match="must include 1.0"):
        BottomUpSettings(scales=(0.5, 2.0))
    with pytest.raises(ConfigError, match="odd"):
        BottomUpSettings(nms_kernel=4)
