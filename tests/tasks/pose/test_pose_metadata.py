import json

import pytest

from hrnet.tasks.pose.metadata import COCO_KEYPOINTS, MPII_KEYPOINTS, MetadataError, load_metadata


def test_builtin_sets_are_consistent():
    assert load_metadata("coco") is COCO_KEYPOINTS and COCO_KEYPOINTS.num_keypoints == 17
    assert load_metadata("mpii") is MPII_KEYPOINTS and MPII_KEYPOINTS.num_keypoints == 16
    for meta in (COCO_KEYPOINTS, MPII_KEYPOINTS):
        for a, b in meta.flip_pairs:
            left, right = meta.keypoints[a], meta.keypoints[b]
            assert left.replace("left", "right") == right or left.replace("right", "left") == right
        assert set(meta.upper_body_ids) | set(meta.lower_body_ids) == set(range(meta.num_keypoints))


def test_flip_permutation_swaps_pairs_and_keeps_the_rest():
    order = COCO_KEYPOINTS.flip_permutation()
    assert order[0] == 0 and order[1] == 2 and order[2] == 1 and order[16] == 15
    assert sorted(order) == list(range(17))


def _custom(**changes):
    data = {"name": "hand", "keypoints": ["wrist", "left_tip", "right_tip"], "flip_pairs": [[1, 2]],
            "skeleton": [[0, 1], [0, 2]], "sigmas": [0.05, 0.03, 0.03], "upper_body_ids": [0],
            "lower_body_ids": [1, 2]}
    data.update(changes)
    return data


def test_custom_set_from_yaml_and_json(tmp_path):
    (tmp_path / "hand.json").write_text(json.dumps(_custom()))
    meta = load_metadata(tmp_path / "hand.json")
    assert meta.num_keypoints == 3 and meta.flip_permutation() == [0, 2, 1]
    (tmp_path / "hand.yaml").write_text("keypoints: [a, b]\nflip_pairs: []\nskeleton: [[0, 1]]\n"
                                        "sigmas: [0.1, 0.1]\nupper_body_ids: [0]\nlower_body_ids: [1]\n")
    assert load_metadata(tmp_path / "hand.yaml").keypoints == ("a", "b")


@pytest.mark.parametrize("changes, field", [
    ({"sigmas": [0.05]}, "sigmas"),
    ({"flip_pairs": [[1, 5]]}, "flip_pairs"),
    ({"skeleton": [[0, 0]]}, "skeleton"),
    ({"upper_body_ids": [9]}, "upper_body_ids"),
    ({"colour": "red"}, "colour"),
    ({"flip_pairs": [[1, 2], [2, 0]]}, "flip_pairs"),
])
def test_bad_metadata_names_the_file_and_field(tmp_path, changes, field):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_custom(**changes)))
    with pytest.raises(MetadataError, match=field) as error:
        load_metadata(path)
    assert str(path) in str(error.value)


def test_unknown_name_is_an_error():
    with pytest.raises(MetadataError, match="neither built in"):
        load_metadata("no_such_set")
