from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from helpers import shared_data
from hrnet.tasks.bottom_up.transforms import affine_transform, resize_align
from hrnet.tasks.pose.data import to_tensor
from hrnet.tasks.pose.metadata import COCO_KEYPOINTS


@pytest.fixture
def coco_dir() -> Path:
    return shared_data("coco_kpt", "test_coco.json").parent


class Oracle(nn.Module):
    """A stand-in for a perfectly trained HigherHRNet on one image: it recognises which test scale
    (and whether the mirrored image) it is given, and returns what the network should: at 1/4 and
    1/2 of its input, a Gaussian at every labelled joint of the image's people (the joint at
    resized-image coordinate P peaks at output index P / stride - 0.5, the convention the official
    decoding reads back as P), and at 1/4 the tag 2p of person p around each of its joints."""

    def __init__(self, image: np.ndarray, joints: np.ndarray, *, input_size: int, scales=(1.0,), tag_radius=4):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))  # a device for predict_people
        self.head = type("Layout", (), {"num_classes": joints.shape[1], "with_ae_loss": (True, False),
                                        "tag_per_joint": True})()
        self.joints, self.tag_radius = joints, tag_radius
        self.flip_index = COCO_KEYPOINTS.flip_permutation()
        self.views = []
        for scale in scales:
            resized, center, box = resize_align(image, input_size, scale, min(scales))
            self.views.append((to_tensor(resized)[None], affine_transform(center, box, resized.shape[1::-1])))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        for tensor, matrix in self.views:
            if tensor.shape == x.shape and (torch.equal(tensor, x) or torch.equal(tensor.flip(3), x)):
                return self._outputs(x.shape[2], x.shape[3], matrix, flipped=not torch.equal(tensor, x))
        raise AssertionError("the oracle was given an input it does not know")

    def _outputs(self, height: int, width: int, matrix: np.ndarray, flipped: bool) -> list[torch.Tensor]:
        k = self.joints.shape[1]
        points = self.joints[..., :2] @ matrix[:, :2].T + matrix[:, 2]
        visible = self.joints[..., 2] > 0
        if flipped:  # what the network sees in the mirror: left and right swapped, x -> W - x
            points = points[:, self.flip_index].copy()
            points[..., 0] = width - points[..., 0]
            visible = visible[:, self.flip_index]
        outputs = []
        for stride, channels in ((4, 2 * k), (2, k)):
            h, w = height // stride, width // stride
            maps = np.zeros((channels, h, w), np.float32)
            if channels > k:
                maps[k:] = -1000.0  # background tags far from every person's
            ys, xs = np.mgrid[0:h, 0:w]
            for p, (person, seen) in enumerate(zip(points, visible)):
                for j in np.flatnonzero(seen):
                    u, v = person[j] / stride - 0.5
                    maps[j] = np.maximum(maps[j], np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * (8 / stride) ** 2)))
                    if channels > k:
                        near = (abs(xs - u) <= self.tag_radius) & (abs(ys - v) <= self.tag_radius)
                        maps[k + j][near] = 2.0 * p
            outputs.append(torch.from_numpy(maps)[None])
        return outputs


@pytest.fixture
def oracle():
    return Oracle
