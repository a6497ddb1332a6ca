"""Grouping detected joints into people by their associative-embedding tags (official
`lib/core/group.py`, HeatmapParser, itself from princeton-vl/pose-ae-train).

1. NMS: a heatmap value survives where it is the maximum of its `kernel` x `kernel` window.
2. Top-k: the `max_people` strongest peaks of every keypoint, with their tags.
3. Match: keypoints in a fixed order (head, shoulders, hips, then limbs); the peaks of the first
   start people; each next keypoint's peaks (above the detection threshold) are assigned to the
   people so far by the Hungarian algorithm on cost round(tag distance) x 100 - heatmap value; a
   peak whose tag is `tag_threshold` or farther from its person's mean tag starts a new person.
4. Adjust: each joint moves a quarter pixel toward its higher neighbour, plus the half-pixel centre.
5. Score: the mean heatmap value over all keypoints (missing ones count 0), before refine.
6. Refine: a missing keypoint takes the maximum of heatmap - round(distance to the person's mean
   tag) over the whole map, when that heatmap value is positive.

The assignment uses `scipy.optimize.linear_sum_assignment`; the official code uses the `munkres`
package. Both find a minimum-cost assignment, but the cost matrix is full of exact ties (the
distances are rounded to whole numbers before x 100), and the two solvers break ties
differently, so on tied matrices a joint can go to a different person than officially.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from hrnet.errors import require

# Official Params.joint_order (COCO order, 1-based there): head, shoulders, hips, then the limbs.
COCO_JOINT_ORDER = (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)


def joint_order(num_joints: int) -> list[int]:
    """The matching order: the first `num_joints` of the official order when they are exactly the
    keypoints 0..K-1 (COCO 17, CrowdPose 14), else 0..K-1."""
    order = list(COCO_JOINT_ORDER[:num_joints])
    return order if sorted(order) == list(range(num_joints)) else list(range(num_joints))


def nms(heatmaps: torch.Tensor, kernel: int = 5) -> torch.Tensor:
    """(N, K, H, W) -> the same with every non-maximum of its window set to 0 (max pooling pads
    with -inf, so border peaks survive)."""
    pad = (kernel - 1) // 2
    # Rows then columns: the same maximum as one kernel x kernel window, with fewer comparisons.
    pooled = F.max_pool2d(F.max_pool2d(heatmaps, (1, kernel), 1, (0, pad)), (kernel, 1), 1, (pad, 0))
    return heatmaps * torch.eq(pooled, heatmaps).float()


def top_k(heatmaps: torch.Tensor, tags: torch.Tensor, *, max_people: int, kernel: int = 5
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heatmaps (K, H, W) and tags (K or 1, H, W, L) of one image -> values (K, M), tags (K, M, L)
    and locations (K, M, 2) as integer (x, y) of the M = min(max_people, H*W) strongest peaks."""
    k, h, w = heatmaps.shape
    peaks = nms(heatmaps[None], kernel)[0].reshape(k, h * w)
    values, index = peaks.topk(min(max_people, h * w), dim=1)
    flat = tags.reshape(tags.shape[0], h * w, -1).expand(k, -1, -1)
    gathered = torch.stack([torch.gather(flat[:, :, i], 1, index) for i in range(flat.shape[2])], dim=2)
    locations = torch.stack((index % w, index // w), dim=2)
    return values.cpu().numpy(), gathered.cpu().numpy(), locations.cpu().numpy()


def _assign(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost (row, column) pairs covering every row of `cost` (rows <= columns)."""
    optimize = require("scipy.optimize", extra="bottomup", purpose="grouping joints into people (bottom-up pose)")
    rows, cols = optimize.linear_sum_assignment(cost)
    return list(zip(rows.tolist(), cols.tolist()))


def match_by_tag(values: np.ndarray, tags: np.ndarray, locations: np.ndarray, *, detection_threshold: float = 0.1,
                 tag_threshold: float = 1.0, max_people: int = 30) -> np.ndarray:
    """Top-k peaks of one image (from `top_k`) -> people (P, K, 3 + L) float32 with columns x, y,
    heatmap value, tags; zeros for keypoints a person lacks. People are in order of creation.

    As officially, a person is keyed by the first tag component of the peak that started it (a
    later peak with the very same value writes into that person), and only the first
    `max_people` people take part in matching (more may be created)."""
    num_joints = values.shape[0]
    empty = np.zeros((num_joints, 3 + tags.shape[2]))
    people: dict[float, np.ndarray] = {}
    person_tags: dict[float, list[np.ndarray]] = {}
    for i, idx in enumerate(joint_order(num_joints)):
        joint_tags = tags[idx]
        joints = np.concatenate((locations[idx], values[idx, :, None], joint_tags), 1)
        keep = joints[:, 2] > detection_threshold
        joint_tags, joints = joint_tags[keep], joints[keep]
        if len(joints) == 0:
            continue
        if i == 0 or not people:
            for tag, joint in zip(joint_tags, joints):
                people.setdefault(tag[0], np.copy(empty))[idx] = joint
                person_tags[tag[0]] = [tag]
            continue
        keys = list(people)[:max_people]
        means = np.array([np.mean(person_tags[key], axis=0) for key in keys])
        distance = np.linalg.norm(joints[:, None, 3:] - means[None, :, :], ord=2, axis=2)
        cost = np.round(distance) * 100 - joints[:, 2:3]
        added, grouped = distance.shape
        if added > grouped:  # extra columns: a joint matched there starts a new person
            cost = np.concatenate((cost, np.zeros((added, added - grouped)) + 1e10), axis=1)
        for row, col in _assign(cost):
            if col < grouped and distance[row, col] < tag_threshold:
                people[keys[col]][idx] = joints[row]
                person_tags[keys[col]].append(joint_tags[row])
            else:
                key = joint_tags[row][0]
                people.setdefault(key, np.copy(empty))[idx] = joints[row]
                person_tags[key] = [joint_tags[row]]
    if not people:
        return np.zeros((0, num_joints, 3 + tags.shape[2]), dtype=np.float32)
    return np.array(list(people.values())).astype(np.float32)


def _quarter_offset(heatmap: np.ndarray | torch.Tensor, x: int, y: int) -> tuple[float, float]:
    """(x + 0.5 +- 0.25, y + 0.5 +- 0.25): toward the higher horizontal / vertical neighbour;
    a tie goes to -0.25 (strict >), the border compares with the pixel itself."""
    h, w = heatmap.shape
    dx = 0.25 if heatmap[y, min(x + 1, w - 1)] > heatmap[y, max(x - 1, 0)] else -0.25
    dy = 0.25 if heatmap[min(y + 1, h - 1), x] > heatmap[max(0, y - 1), x] else -0.25
    return x + 0.5 + dx, y + 0.5 + dy


def adjust(people: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """People (P, K, 3 + L) at integer peaks -> quarter-offset coordinates (in place; returned).
    `heatmaps` (K, H, W) are the aggregated maps before NMS."""
    for person in people:
        for k, joint in enumerate(person):
            if joint[2] > 0:
                joint[0], joint[1] = _quarter_offset(heatmaps[k], int(joint[0]), int(joint[1]))
    return people


def refine(heatmaps: np.ndarray, tags: np.ndarray, person: np.ndarray) -> np.ndarray:
    """Fill the keypoints a person (K, 3 + L) lacks: for each keypoint, the argmax over the map of
    heatmap - round(|tag - the person's mean tag|), quarter-offset, taken when its heatmap value
    is positive. heatmaps (K, H, W); tags (K, L, H, W), one plane per tag component. In place;
    returned."""
    # Truncating the adjusted coordinates gives back the integer peaks.
    detected = [tags[k, :, y, x] for k, (x, y) in enumerate(person[:, :2].astype(np.int32)) if person[k, 2] > 0]
    mean_tag = np.mean(detected, axis=0)
    for k in np.flatnonzero(person[:, 2] == 0):  # officially computed for all, but only used for these
        heatmap = heatmaps[k]
        distance = _tag_distance(tags[k], mean_tag)
        y, x = np.unravel_index(np.argmax(heatmap - np.round(distance)), heatmap.shape)
        value = heatmap[y, x]
        if value > 0:
            person[k, 0], person[k, 1] = _quarter_offset(heatmap, int(x), int(y))
            person[k, 2] = value
    return person


def _tag_distance(planes: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """(L, H, W) tags, (L,) mean -> (H, W) Euclidean distance, float32: the official
    `((tag - mean) ** 2).sum(axis=2) ** 0.5` on (H, W, L), added in numpy's order (one term after
    the other below 8 terms), plane by plane, which is much faster than reducing a length-2 axis."""
    if len(planes) >= 8:  # numpy sums 8 or more terms pairwise: use the official layout
        return ((np.ascontiguousarray(np.moveaxis(planes, 0, -1)) - mean) ** 2).sum(axis=-1) ** 0.5
    total = (planes[0] - mean[0]) ** 2
    for plane, m in zip(planes[1:], mean[1:]):
        total += (plane - m) ** 2
    return total ** 0.5


def group_people(heatmaps: torch.Tensor, tags: torch.Tensor, *, detection_threshold: float = 0.1,
                 tag_threshold: float = 1.0, max_people: int = 30, nms_kernel: int = 5, adjust_joints: bool = True,
                 refine_joints: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Official `HeatmapParser.parse` for one image: heatmaps (K, H, W), tags (K or 1, H, W, L) ->
    people (P, K, 3 + L) float32 (x, y in heatmap pixels, value, tags) and scores (P,) float32."""
    values, top_tags, locations = top_k(heatmaps, tags, max_people=max_people, kernel=nms_kernel)
    people = match_by_tag(values, top_tags, locations, detection_threshold=detection_threshold,
                          tag_threshold=tag_threshold, max_people=max_people)
    maps = heatmaps.cpu().numpy()
    if adjust_joints:
        people = adjust(people, maps)
    scores = np.array([person[:, 2].mean() for person in people], dtype=np.float32)
    if refine_joints and len(people):
        planes = np.ascontiguousarray(tags.permute(0, 3, 1, 2).cpu().numpy())
        if planes.shape[0] != maps.shape[0]:  # one tag map shared by all keypoints
            planes = np.tile(planes, (maps.shape[0], 1, 1, 1))
        for person in people:
            refine(maps, planes, person)
    return people, scores

