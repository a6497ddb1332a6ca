"""Grouping steps against examples worked out by hand from the official HeatmapParser (HigherHRNet
lib/core/group.py): NMS, top-k, matching by tag with the Hungarian algorithm, adjust, refine, scores."""

import sys

import numpy as np
import pytest
import torch

from hrnet.errors import DependencyError
from hrnet.tasks.bottom_up.grouping import (_tag_distance, adjust, group_people, joint_order, match_by_tag, nms,
                                            refine, top_k)


def peaks(*joints):
    """Per joint a list of (x, y, value, tag) peaks -> (values (K, M), tags (K, M, 1), locations (K, M, 2))."""
    m = max(len(j) for j in joints)
    values, tags, locations = np.zeros((len(joints), m), np.float32), np.zeros((len(joints), m, 1), np.float32), \
        np.zeros((len(joints), m, 2), np.int64)
    for k, joint in enumerate(joints):
        for i, (x, y, value, tag) in enumerate(joint):
            values[k, i], tags[k, i, 0], locations[k, i] = value, tag, (x, y)
    return values, tags, locations


def test_joint_order_is_the_official_one():
    assert joint_order(17) == [0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16]
    assert joint_order(14) == [0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13]  # CrowdPose
    assert joint_order(5) == [0, 1, 2, 3, 4] and joint_order(20) == list(range(20))


def test_nms_keeps_window_maxima_and_equal_neighbours():
    heatmap = torch.tensor([[[[0.1, 0.9, 0.2, 0.0, 0.0],
                              [0.3, 0.4, 0.2, 0.0, 0.7],
                              [0.0, 0.0, 0.0, 0.0, 0.0],
                              [0.5, 0.0, 0.0, 0.6, 0.6]]]])
    kept = nms(heatmap, kernel=3)[0, 0]
    expected = torch.zeros(4, 5)
    expected[0, 1], expected[1, 4], expected[3, 0], expected[3, 3], expected[3, 4] = 0.9, 0.7, 0.5, 0.6, 0.6
    assert torch.equal(kept, expected)  # the border peaks survive (padding is -inf); ties both stay


def test_top_k_sorts_peaks_and_gathers_their_tags():
    heatmaps = torch.zeros(1, 4, 6)
    heatmaps[0, 1, 4], heatmaps[0, 3, 0] = 0.8, 0.6
    tags = torch.arange(24, dtype=torch.float32).reshape(1, 4, 6, 1).repeat(1, 1, 1, 2)
    tags[..., 1] *= -1
    values, top_tags, locations = top_k(heatmaps, tags, max_people=3, kernel=3)
    assert values[0, :2].tolist() == pytest.approx([0.8, 0.6]) and values[0, 2] == 0
    assert locations[0, :2].tolist() == [[4, 1], [0, 3]]  # (x, y)
    assert top_tags[0, :2].tolist() == [[10.0, -10.0], [18.0, -18.0]]  # flat index y * 6 + x


def test_two_people_and_a_stray_joint():
    """Joint 0 starts people A (tag 0) and B (tag 5); joint 1's peaks go to B (|5.2 - 5| rounds to 0:
    cost -0.7) and A (cost -0.6), not crosswise (cost 499.3 + 499.4); joint 2's tag 2.6 is 2.45 and 2.5
    from the people's mean tags: at least tag_threshold 1, a new person C. The 0.05 peak is below 0.1."""
    values, tags, locations = peaks([(2, 3, 0.9, 0.0), (10, 3, 0.8, 5.0), (20, 20, 0.05, 9.0)],
                                    [(11, 5, 0.7, 5.2), (3, 5, 0.6, 0.3)],
                                    [(30, 30, 0.5, 2.6)])
    people = match_by_tag(values, tags, locations)
    assert people.shape == (3, 3, 4) and people.dtype == np.float32
    a, b, c = people
    np.testing.assert_allclose(a, [[2, 3, 0.9, 0.0], [3, 5, 0.6, 0.3], [0, 0, 0, 0]], rtol=1e-6)
    np.testing.assert_allclose(b, [[10, 3, 0.8, 5.0], [11, 5, 0.7, 5.2], [0, 0, 0, 0]], rtol=1e-6)
    np.testing.assert_allclose(c, [[0, 0, 0, 0], [0, 0, 0, 0], [30, 30, 0.5, 2.6]], rtol=1e-6)


def test_cost_is_rounded_tag_distance_times_100_minus_the_heatmap_value():
    """People A (tag 0), B (tag 3). Peaks r0 (tag 1.4, value 0.9), r1 (tag 1.6, value 0.3): costs
    r0-A 100 - 0.9, r0-B 200 - 0.9, r1-A 200 - 0.3, r1-B 100 - 0.3: r0 joins A, r1 joins B (with
    tag_threshold 2; the default 1 would make both new people)."""
    values, tags, locations = peaks([(0, 0, 0.5, 0.0), (9, 0, 0.5, 3.0)], [(1, 1, 0.9, 1.4), (8, 1, 0.3, 1.6)])
    people = match_by_tag(values, tags, locations, tag_threshold=2.0)
    np.testing.assert_allclose(people[:, 1, :3], [[1, 1, 0.9], [8, 1, 0.3]], rtol=1e-6)
    assert len(match_by_tag(values, tags, locations)) == 4


def test_fewer_joints_than_people_and_the_max_people_limit():
    values, tags, locations = peaks([(0, 0, 0.5, 0.0), (9, 0, 0.5, 3.0)], [(8, 1, 0.4, 3.3)])
    people = match_by_tag(values, tags, locations)
    assert len(people) == 2 and people[1, 1].tolist() == pytest.approx([8, 1, 0.4, 3.3])
    # With max_people 1 only A takes part in matching: the peak (3.3 from A) starts a new person.
    assert len(match_by_tag(values, tags, locations, max_people=1)) == 3


def test_peaks_with_the_same_first_tag_are_one_person_as_officially():
    values, tags, locations = peaks([(0, 0, 0.5, 1.0), (9, 0, 0.4, 1.0)])
    people = match_by_tag(values, tags, locations)
    assert len(people) == 1 and people[0, 0, :3].tolist() == pytest.approx([9, 0, 0.4])  # the later one wins


def test_nothing_above_the_threshold_is_nobody():
    values, tags, locations = peaks([(0, 0, 0.09, 0.0)], [(1, 1, 0.05, 0.0)])
    assert match_by_tag(values, tags, locations).shape == (0, 2, 4)
    # float32 0.1 is 0.10000000149: above the threshold 0.1, as in the official float64 comparison
    assert len(match_by_tag(*peaks([(0, 0, 0.1, 0.0)]))) == 1


def test_adjust_moves_a_quarter_toward_the_higher_neighbour():
    heatmaps = np.array([[[0, 1, 2, 0],
                          [0, 5, 3, 0],
                          [0, 4, 0, 0]]], np.float32)
    people = np.zeros((2, 1, 4), np.float32)
    people[0, 0, :3] = (1, 1, 5)  # right 3 > left 0: x + 0.25; below 4 > above 1: y + 0.25
    people[1, 0, :3] = (0, 0, 0.1)  # border: right 1 > itself 0: + 0.25; below 0 = itself 0 (tie): - 0.25
    adjusted = adjust(people, heatmaps)
    assert adjusted[:, 0, :2].tolist() == [[1.75, 1.75], [0.75, 0.25]]


def test_refine_fills_a_missing_joint_from_the_tag_map():
    """Joint 0 found at (1, 1) with tag 2. For joint 1, heatmap - round(|tag - 2|): (0, 0): 0.2 - 0;
    (3, 1): 0.9 - round(2.0) = -1.1; (1, 2): 0.5 - round(0.4) = 0.5, the maximum: value 0.5 at
    x = 1 + 0.5 - 0.25 (right 0 = left 0), y = 2 + 0.5 + 0.25 (below: itself 0.5 > above 0)."""
    heatmaps = np.zeros((2, 3, 4), np.float32)
    heatmaps[0, 1, 1] = 1.0
    heatmaps[1, 0, 0], heatmaps[1, 1, 3], heatmaps[1, 2, 1] = 0.2, 0.9, 0.5
    tags = np.full((2, 1, 3, 4), 10.0, np.float32)  # (K, L, H, W)
    tags[0, 0, 1, 1] = 2.0
    tags[1, 0, 0, 0], tags[1, 0, 1, 3], tags[1, 0, 2, 1] = 2.1, 4.0, 2.4
    person = np.array([[1.75, 1.25, 1.0, 2.0], [0, 0, 0, 0]], np.float32)
    refined = refine(heatmaps, tags, person.copy())
    assert refined[0].tolist() == person[0].tolist()  # found joints are kept
    assert refined[1, :3].tolist() == pytest.approx([1.25, 2.75, 0.5])
    heatmaps[1, 2, 1] = 0.0  # the best is now (0, 0) with value 0.2 ...
    assert refine(heatmaps, tags, person.copy())[1, :3].tolist() == pytest.approx([0.25, 0.25, 0.2])
    heatmaps[1] = -heatmaps[1]  # ... and no positive value: nothing is filled
    assert refine(heatmaps, tags, person.copy())[1].tolist() == [0, 0, 0, 0]


def _official_refine(det, tag, keypoints):
    """The official HeatmapParser.refine, transcribed (det (K, H, W), tag (K, H, W, L))."""
    tags = [tag[i, y, x] for i, (x, y) in enumerate(keypoints[:, :2].astype(np.int32)) if keypoints[i, 2] > 0]
    prev_tag = np.mean(tags, axis=0)
    ans = []
    for i in range(len(keypoints)):
        tmp = det[i]
        tt = (((tag[i] - prev_tag[None, None, :]) ** 2).sum(axis=2) ** 0.5)
        y, x = np.unravel_index(np.argmax(tmp - np.round(tt)), tmp.shape)
        val, xx, yy = tmp[y, x], x, y
        x, y = x + 0.5, y + 0.5
        x += 0.25 if tmp[yy, min(xx + 1, tmp.shape[1] - 1)] > tmp[yy, max(xx - 1, 0)] else -0.25
        y += 0.25 if tmp[min(yy + 1, tmp.shape[0] - 1), xx] > tmp[max(0, yy - 1), xx] else -0.25
        ans.append((x, y, val))
    ans = np.array(ans)
    for i in range(len(keypoints)):
        if ans[i, 2] > 0 and keypoints[i, 2] == 0:
            keypoints[i, :2], keypoints[i, 2] = ans[i, :2], ans[i, 2]
    return keypoints


@pytest.mark.parametrize("tag_dims", [1, 2, 4, 8])
def test_refine_equals_the_official_computation_bit_for_bit(tag_dims):
    rng = np.random.default_rng(tag_dims)
    det = rng.standard_normal((5, 30, 40)).astype(np.float32) * 0.3
    tag = (rng.standard_normal((5, 30, 40, tag_dims)) * 2).astype(np.float32)
    keypoints = np.zeros((5, 3 + tag_dims), np.float32)
    keypoints[[0, 3], :3] = [[12.75, 7.25, 0.6], [30.25, 20.75, 0.4]]
    ours = refine(det, np.ascontiguousarray(tag.transpose(0, 3, 1, 2)), keypoints.copy())
    assert np.array_equal(ours, _official_refine(det, tag, keypoints.copy()))
    planes = np.ascontiguousarray(tag[0].transpose(2, 0, 1))
    mean = tag[1, 3, 4]
    assert np.array_equal(_tag_distance(planes, mean), ((tag[0] - mean[None, None]) ** 2).sum(axis=2) ** 0.5)


def test_scores_are_the_mean_over_all_joints_before_refine():
    heatmaps = torch.zeros(3, 16, 16)
    heatmaps[0, 4, 4], heatmaps[1, 4, 6], heatmaps[2, 12, 12] = 0.9, 0.6, 0.3
    tags = torch.zeros(3, 16, 16, 1)  # everything has tag 0: one person
    people, scores = group_people(heatmaps, tags)
    assert len(people) == 1 and scores.tolist() == pytest.approx([(0.9 + 0.6 + 0.3) / 3])
    heatmaps[2] = 0
    heatmaps[2, 12, 12] = 0.05  # below the detection threshold: found by refine, not in the score
    people, scores = group_people(heatmaps, tags)
    assert scores.tolist() == pytest.approx([(0.9 + 0.6) / 3]) and people[0, 2, 2] == pytest.approx(0.05)
    people, _ = group_people(heatmaps, tags, refine_joints=False, adjust_joints=False)
    np.testing.assert_allclose(people[0, :, :3], [[4, 4, 0.9], [6, 4, 0.6], [0, 0, 0]], rtol=1e-6)


def test_missing_scipy_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)  # import scipy.optimize now fails
    values, tags, locations = peaks([(0, 0, 0.5, 0.0)], [(1, 1, 0.5, 0.0)])
    with pytest.raises(DependencyError, match=r'pip install "hrnet\[bottomup\]"'):
        match_by_tag(values, tags, locations)
