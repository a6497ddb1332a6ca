import json

import numpy as np
import pytest

from hrnet.data.io import DataError
from hrnet.tasks.pose.data import PoseDataset, load_coco_keypoints, load_mpii
from hrnet.tasks.pose.decode import decode_heatmaps
from hrnet.tasks.pose.metadata import COCO_KEYPOINTS, MPII_KEYPOINTS
from hrnet.tasks.pose.transforms import Augmentation


def test_coco_gt_boxes_as_the_official_loader(coco_dir):
    records = load_coco_keypoints(coco_dir / "test_coco.json", coco_dir, metadata=COCO_KEYPOINTS, aspect_ratio=0.75)
    coco = json.loads((coco_dir / "test_coco.json").read_text())
    labelled = [a for a in coco["annotations"] if max(a["keypoints"]) > 0 and not a["iscrowd"]]
    assert len(records) == len(labelled) < len(coco["annotations"])
    first = records[0]
    assert first.image_id == 785 and first.image.name == "000000000785.jpg"
    # bbox [280.79, 44.73, 218.7, 346.68] on a 640 x 425 image -> clipped w, h = 217.7, 345.68
    # (inclusive ends), center = top-left + half; width grows to 0.75 x 345.68; / 200 x 1.25.
    np.testing.assert_allclose(first.center, [280.79 + 217.7 / 2, 44.73 + 345.68 / 2], rtol=1e-6)
    np.testing.assert_allclose(first.scale, [0.75 * 345.68 / 200 * 1.25, 345.68 / 200 * 1.25], rtol=1e-5)
    assert first.visible.max() == 1 and first.joints[0].tolist() == [367, 81]


def test_coco_detection_boxes_with_score_threshold(coco_dir):
    detections = json.loads((coco_dir / "test_coco_det_AP_H_56.json").read_text())
    records = load_coco_keypoints(coco_dir / "test_coco.json", coco_dir, metadata=COCO_KEYPOINTS, aspect_ratio=0.75,
                                  detections=coco_dir / "test_coco_det_AP_H_56.json", score_threshold=0.5)
    assert len(records) == sum(d["score"] >= 0.5 and d["category_id"] == 1 for d in detections)
    assert all(r.score >= 0.5 for r in records) and records[0].visible.sum() == 17


def test_bad_coco_files_name_the_problem(tmp_path, coco_dir):
    coco = json.loads((coco_dir / "test_coco.json").read_text())
    coco["annotations"][1]["keypoints"] = coco["annotations"][1]["keypoints"][:-3]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(coco))
    with pytest.raises(DataError, match=rf"\(id {coco['annotations'][1]['id']}\) field 'keypoints' holds 48 values"):
        load_coco_keypoints(bad, coco_dir, metadata=COCO_KEYPOINTS, aspect_ratio=0.75)
    with pytest.raises(DataError, match="17 keypoints but the metadata 'mpii' has 16"):
        load_coco_keypoints(coco_dir / "test_coco.json", coco_dir, metadata=MPII_KEYPOINTS, aspect_ratio=0.75)
    with pytest.raises(DataError, match="does not exist"):
        load_coco_keypoints(tmp_path / "missing.json", coco_dir, metadata=COCO_KEYPOINTS, aspect_ratio=0.75)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(DataError, match="broken.json is not valid JSON"):
        load_coco_keypoints(tmp_path / "broken.json", coco_dir, metadata=COCO_KEYPOINTS, aspect_ratio=0.75)


def test_crop_targets_decode_back_onto_the_labels(coco_dir):
    """Crop, heatmap targets, decoding and back-projection compose to the identity up to rounding
    each joint to its heatmap cell (half a cell per axis). Sigma 2: with a non-integer 3 sigma the
    official target puts a peak near the top/left border one cell off (see test_pose_targets.py)."""
    records = load_coco_keypoints(coco_dir / "test_coco.json", coco_dir, metadata=COCO_KEYPOINTS, aspect_ratio=0.75)
    dataset = PoseDataset(records, metadata=COCO_KEYPOINTS, input_size=(96, 128), heatmap_size=(24, 32), sigma=2.0)
    for index in (0, 5, len(records) - 1):
        sample = dataset[index]
        assert sample["image"].shape == (3, 128, 96) and sample["target"].shape == (17, 32, 24)
        keypoints, _ = decode_heatmaps(sample["target"][None], sample["center"][None].numpy(),
                                       sample["scale"][None].numpy())
        inside = sample["target_weight"][:, 0].numpy() > 0
        assert inside.sum() > 0 and (inside <= (records[index].visible > 0)).all()
        cell = records[index].scale[0] * 200 / 24  # original pixels per heatmap cell
        error = np.abs(keypoints[0] - records[index].joints)[inside]
        assert error.max() <= 0.5 * cell + 1e-3


def test_augmented_samples_keep_labels_on_their_peaks(coco_dir):
    records = load_coco_keypoints(coco_dir / "test_coco.json", coco_dir, metadata=COCO_KEYPOINTS, aspect_ratio=0.75)
    dataset = PoseDataset(records, metadata=COCO_KEYPOINTS, input_size=(96, 128), heatmap_size=(24, 32), sigma=1.5,
                          augmentation=Augmentation())
    import torch

    torch.manual_seed(0)
    first, second = dataset[0], dataset[0]
    assert not torch.equal(first["image"], second["image"])  # random draws differ
    torch.manual_seed(3)
    again = dataset[0]
    torch.manual_seed(3)
    assert torch.equal(dataset[0]["image"], again["image"])  # and repeat under the same seed


def test_mpii_loader_reads_the_images(mpii_dir):
    records = load_mpii(mpii_dir / "test_mpii.json", mpii_dir, metadata=MPII_KEYPOINTS)
    entries = json.loads((mpii_dir / "test_mpii.json").read_text())
    assert len(records) == 5
    # Official adjustment: center down 15 x scale, scale x 1.25, both 1-based -> 0-based.
    c, s = entries[0]["center"], entries[0]["scale"]
    np.testing.assert_allclose(records[0].center, [c[0] - 1, c[1] + 15 * s - 1], rtol=1e-6)
    np.testing.assert_allclose(records[0].scale, [1.25 * s, 1.25 * s], rtol=1e-6)
    np.testing.assert_allclose(records[0].joints, np.asarray(entries[0]["joints"]) - 1)
    dataset = PoseDataset(records, metadata=MPII_KEYPOINTS, input_size=(64, 64), heatmap_size=(16, 16), sigma=1)
    for i in range(5):
        sample = dataset[i]
        assert sample["image"].shape == (3, 64, 64) and sample["image"].std() > 0.1  # real pixels, not padding
        assert sample["target_weight"].sum() > 0


def test_bad_mpii_entry_names_the_field(tmp_path):
    path = tmp_path / "mpii.json"
    path.write_text(json.dumps([{"image": "a.jpg", "center": [1, 2], "scale": 1.0, "joints": [[0, 0]] * 3,
                                 "joints_vis": [1] * 3}]))
    with pytest.raises(DataError, match="entry 0 field 'joints' must be 16"):
        load_mpii(path, tmp_path, metadata=MPII_KEYPOINTS)
