"""HRNetV2p detectors: torchvision's Faster R-CNN and Mask R-CNN on an HRNet + feature-pyramid backbone.

The settings follow the official HRNet object-detection configs (mmdetection, `faster_rcnn_hrnetv2p`)
wherever torchvision exposes them: one anchor size per pyramid level (8 x stride: 32..512) with
ratios 0.5/1/2, images resized to a shorter side of 800 capped at 1333 and padded to a multiple of
32, ImageNet mean/std on RGB in [0, 1], RoIAlign over the four finest levels (7x7 boxes, 14x14
masks), and BatchNorm statistics frozen when fine-tuning from ImageNet weights.

torchvision's conventions hold: the input is a list of (3, H, W) float RGB tensors in [0, 1];
training returns the loss dict, eval returns one dict per image with `boxes` (K, 4) x1y1x2y2 in
input pixels, `labels` (K,), `scores` (K,) and, for Mask R-CNN, `masks` (K, 1, H, W) in [0, 1].
`num_classes` counts the background (label 0), as in torchvision.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Mapping, Sequence

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor
from torchvision.ops import FrozenBatchNorm2d

from hrnet.backbone import HRNetBackbone
from hrnet.checkpoints import LoadReport, load_state_dict, read_state_dict
from hrnet.heads import FeaturePyramidHead
from hrnet.models import init_weights
from hrnet.spec import HRNetSpec, get_spec

DETECTORS = ("faster_rcnn", "mask_rcnn")
# Official: anchor scale 8 on strides 4..64, three aspect ratios per location.
ANCHOR_SIZES = ((32,), (64,), (128,), (256,), (512,))
ANCHOR_RATIOS = (0.5, 1.0, 2.0)
SIZE_DIVISOR = 32
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


class HRNetV2p(nn.Module):
    """(N, 3, H, W) -> OrderedDict "0".."4" of (N, out_channels, H/s, W/s) for s = 4, 8, 16, 32, 64.

    `body` is the HRNet backbone (official key names, so ImageNet checkpoints load into it) and
    `fpn` the HRNetV2p pyramid (the official HRFPN neck). `out_channels` is what torchvision's
    detectors read.
    """

    def __init__(self, spec: HRNetSpec, *, out_channels: int = 256):
        super().__init__()
        self.body = HRNetBackbone(spec)
        self.fpn = FeaturePyramidHead(in_channels=self.body.channels, out_channels=out_channels, num_levels=5)
        self.out_channels = out_channels
        init_weights(self.body)
        # The official neck initialises its convs with caffe2 Xavier (kaiming uniform, a=1).
        for module in self.fpn.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, a=1)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        return self.fpn(self.body(x))


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d under `module` by a FrozenBatchNorm2d holding its statistics and affine."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            for buffer in ("weight", "bias", "running_mean", "running_var"):
                getattr(frozen, buffer).copy_(getattr(child, buffer).detach())
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child)
    return module


def build_detector(
    spec: HRNetSpec | str,
    *,
    num_classes: int,
    detector: str = "faster_rcnn",
    frozen_bn: bool = False,
    checkpoint: str | os.PathLike | None = None,
    min_size: int | Sequence[int] = 800,
    max_size: int = 1333,
    fpn_channels: int = 256,
    representation_size: int = 1024,
    **detector_options: Any,
) -> nn.Module:
    """Faster R-CNN or Mask R-CNN with an HRNetV2p backbone.

    num_classes: object classes plus one for the background (81 for COCO's 80 classes).
    frozen_bn: fix the backbone's BatchNorm (statistics and affine) as FrozenBatchNorm2d, the
    setting for fine-tuning from ImageNet weights with few images per GPU; leave it False when
    training from scratch. checkpoint: the weights of a whole detector, or an ImageNet
    classification checkpoint (official, timm or hrnet) for the HRNet body only; loaded before
    the BatchNorm is frozen. min_size: the shorter side; a
    sequence makes training pick one at random per batch (multi-scale training) and evaluation
    use the last. fpn_channels (256) and representation_size (the box head's two FC layers,
    1024) are the official widths; smaller ones make quick experiments. `detector_options` go to
    torchvision's FasterRCNN/MaskRCNN (e.g. rpn_post_nms_top_n_train, box_score_thresh).
    """
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; choose one of {', '.join(DETECTORS)}")
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes} must count the background too (object classes + 1), so >= 2")
    backbone = HRNetV2p(get_spec(spec), out_channels=fpn_channels)
    anchors = AnchorGenerator(sizes=ANCHOR_SIZES, aspect_ratios=(ANCHOR_RATIOS,) * len(ANCHOR_SIZES))
    model_type = MaskRCNN if detector == "mask_rcnn" else FasterRCNN
    sizes = tuple(min_size) if isinstance(min_size, Sequence) else (min_size,)
    # torchvision's default RoI poolers already read levels "0".."3" (strides 4..32), as the official
    # RoI extractors do; the stride-64 level "4" only feeds the RPN.
    pooled = 7 * 7 * fpn_channels
    if detector == "mask_rcnn":
        # torchvision's mask head: four 3x3 convs of 256, a 2x deconv, a 1x1 conv per class (as official).
        detector_options.setdefault("mask_predictor", MaskRCNNPredictor(256, 256, num_classes))
    model = model_type(backbone, num_classes=None, min_size=sizes, max_size=max_size,
                       image_mean=list(IMAGE_MEAN), image_std=list(IMAGE_STD), rpn_anchor_generator=anchors,
                       box_head=TwoMLPHead(pooled, representation_size),
                       box_predictor=FastRCNNPredictor(representation_size, num_classes),
                       size_divisible=SIZE_DIVISOR, **detector_options)
    if checkpoint is not None:
        load_weights(model, checkpoint)
    if frozen_bn:
        freeze_batchnorm(backbone.body)
    return model


def load_weights(model: nn.Module, path: str | os.PathLike) -> LoadReport:
    """Load a whole detector's weights into `model`, or, for a checkpoint without detector keys
    (an ImageNet classifier), its HRNet backbone into `model.backbone.body`."""
    state = read_state_dict(path)
    if any(key.startswith("backbone.body.") for key in state):
        return load_state_dict(model, state, source=str(path))
    return load_backbone_checkpoint(model.backbone.body, state, label=str(path))


def load_backbone_checkpoint(body: nn.Module, source: str | os.PathLike | Mapping[str, torch.Tensor], *,
                             label: str | None = None) -> LoadReport:
    """Load the HRNet weights of an ImageNet classification (or pose/segmentation) checkpoint into a
    detector's backbone body (`model.backbone.body`); the checkpoint's head is ignored.

    Works on a body already frozen (FrozenBatchNorm2d has no `num_batches_tracked`).
    """
    state = read_state_dict(source) if not isinstance(source, Mapping) else dict(source)
    label = label or (str(source) if not isinstance(source, Mapping) else "state dict")
    backbone_state = {k: v for k, v in state.items() if k.startswith("backbone.")}
    if not backbone_state:
        raise ValueError(f"{label}: no HRNet backbone weights (keys conv1.*, stage2.*, ...) in the checkpoint")
    if not any(k.endswith("num_batches_tracked") for k in body.state_dict()):
        backbone_state = {k: v for k, v in backbone_state.items() if not k.endswith("num_batches_tracked")}
    return load_state_dict(body, backbone_state, source=label)
