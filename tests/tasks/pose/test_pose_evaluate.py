import json

import numpy as np
import pytest

from hrnet.tasks.pose.data import load_coco_keypoints, load_mpii
from hrnet.tasks.pose.evaluate import (PCKH_LOW_THRESHOLD, coco_results, evaluate_coco, evaluate_pckh, mpii_pckh,
                                       oks_iou, oks_nms, rescore)
from hrnet.tasks.pose.metadata import COCO_KEYPOINTS, MPII_KEYPOINTS

# COCO's kpt_oks_sigmas, written out here independently of the library.
SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]) / 10


def test_rescore_uses_confident_keypoints_only():
    keypoints = np.zeros((2, 4, 3))
    keypoints[0, :, 2] = [0.9, 0.5, 0.1, 0.2]  # 0.1 and 0.2 are not above 0.2
    keypoints[1, :, 2] = 0.1
    np.testing.assert_allclose(rescore(keypoints, np.array([0.8, 1.0])), [0.8 * 0.7, 0.0])


def test_oks_nms_drops_near_duplicates_only():
    rng = np.random.default_rng(0)
    pose = np.concatenate([rng.uniform(0, 100, (17, 2)), np.ones((17, 1))], axis=1)
    near, far = pose.copy(), pose.copy()
    near[:, 0] += 0.5
    far[:, 0] += 60
    poses = np.stack([pose, near, far])
    # The OKS formula: mean over joints of exp(-d^2 / (2 s^2 (2 sigma)^2)), s^2 the mean area.
    expected = np.exp(-0.25 / (2 * 1000.0 * (2 * SIGMAS) ** 2)).mean()
    assert oks_iou(pose, near[None], 1000.0, np.array([1000.0]), SIGMAS)[0] == pytest.approx(expected)
    assert oks_nms(poses, np.array([0.5, 0.9, 0.7]), np.full(3, 1000.0), SIGMAS, 0.9) == [1, 2]
    results = coco_results([7, 7, 7], poses, np.ones(3), np.full(3, 1000.0), metadata=COCO_KEYPOINTS)
    assert len(results) == 2 and {r["image_id"] for r in results} == {7}


def test_pckh_counts_joints_within_half_a_head():
    joints = np.zeros((2, 16, 2))
    sizes = np.array([10.0, 20.0])
    predictions = joints.copy()
    predictions[0, 0] = [5.0, 0]  # 0.5 head: a hit (<=)
    predictions[1, 0] = [10.5, 0]  # 0.525 head: a miss
    predictions[0, 9] = [1.0, 0]  # 0.1 head: a hit at the 0.11 threshold too
    visible = np.ones((2, 16))
    visible[1, 5] = 0
    metrics = mpii_pckh(predictions, joints, visible, sizes, metadata=MPII_KEYPOINTS)
    assert metrics["right_ankle"] == 50.0 and metrics["Head"] == 100.0 and metrics["Ankle"] == 75.0
    # Mean over the 14 joints besides pelvis and thorax, weighted by labelled counts (27 labels).
    assert metrics["Mean"] == pytest.approx(100 * 26 / 27)
    assert PCKH_LOW_THRESHOLD == pytest.approx(0.11)
    assert metrics["Mean@0.1"] == pytest.approx(100 * 25 / 27)


def test_ground_truth_scores_ap_one(coco_dir):
    records = load_coco_keypoints(coco_dir / "test_coco.json", coco_dir, metadata=COCO_KEYPOINTS, aspect_ratio=0.75)
    keypoints = np.stack([np.concatenate([r.joints, np.ones((17, 1))], axis=1) for r in records])
    result = evaluate_coco(records, keypoints, annotations=str(coco_dir / "test_coco.json"), metadata=COCO_KEYPOINTS,
                           how={"boxes": "ground truth"})
    assert result.metrics["AP"] == 1.0 and result.metrics["AR"] == 1.0 and len(result.metrics) == 10
    assert result.how["boxes"] == "ground truth" and "0.9" in result.how["oks_nms"]


def test_moved_predictions_score_what_the_oks_formula_predicts(coco_dir):
    coco = json.loads((coco_dir / "test_coco.json").read_text())
    records = load_coco_keypoints(coco_dir / "test_coco.json", coco_dir, metadata=COCO_KEYPOINTS, aspect_ratio=0.75)
    annotations = {a["id"]: a for a in coco["annotations"]}
    oks, keypoints = [], []
    for i, record in enumerate(records):
        moved = record.joints + np.array([1.5, -1.0]) * (i + 1)  # person i moved by (i + 1) x (1.5, -1) pixels
        gt = np.asarray(annotations[record.extra["annotation_id"]]["keypoints"], float).reshape(17, 3)
        shown = gt[:, 2] > 0
        d2 = ((moved - gt[:, :2]) ** 2).sum(axis=1)
        e = d2 / (2 * SIGMAS) ** 2 / (annotations[record.extra["annotation_id"]]["area"] + np.spacing(1)) / 2
        oks.append(np.exp(-e[shown]).mean())
        keypoints.append(moved)
    oks = np.array(oks)
    # Keypoint scores that rank persons by OKS: after rescoring, the person score is 0.3 + 0.7 OKS.
    scores = np.repeat((0.3 + 0.7 * oks)[:, None, None], 17, axis=1)
    predictions = np.concatenate([np.stack(keypoints), scores], axis=2)
    result = evaluate_coco(records, predictions, annotations=str(coco_dir / "test_coco.json"), metadata=COCO_KEYPOINTS)
    # With detections ranked by OKS, at threshold t the first n_t (OKS >= t) are all true positives:
    # precision 1 up to recall n_t / N, then nothing; COCO averages precision at 101 recall points.
    thresholds = np.linspace(0.5, 0.95, 10)
    recall_points = np.linspace(0, 1, 101)
    recalls = np.array([(oks >= t).sum() / len(oks) for t in thresholds])
    expected_ap = np.mean([(recall_points <= r).sum() / 101 for r in recalls])
    assert 0.3 < expected_ap < 0.99  # the moves matter
    assert result.metrics["AP"] == pytest.approx(expected_ap, abs=1e-9)
    assert result.metrics["AR"] == pytest.approx(recalls.mean(), abs=1e-9)
    assert result.metrics["AP50"] == pytest.approx((recall_points <= recalls[0]).sum() / 101, abs=1e-9)


def test_mpii_ground_truth_scores_100(mpii_dir):
    records = load_mpii(mpii_dir / "test_mpii.json", mpii_dir, metadata=MPII_KEYPOINTS)
    joints = np.stack([r.joints for r in records])
    result = evaluate_pckh(records, joints, metadata=MPII_KEYPOINTS)
    assert result.metrics["Mean"] == 100.0 and result.metrics["Mean@0.1"] == 100.0
    assert "head" in result.how["head_size"]
    joints[:, 10] += 1000  # right wrists far off
    moved = evaluate_pckh(records, joints, metadata=MPII_KEYPOINTS).metrics
    assert moved["right_wrist"] == 0.0 and moved["Wrist"] == 50.0 and moved["Mean"] < 100.0
