"""HRNetV2p detectors: torchvision's Faster R-CNN and Mask R-CNN on an HRNet + feature-pyramid backbone.

The settings follow the official HRNet object-detection configs (mmdetection, `faster_rcnn_hrnetv2p`)
wherever torchvision exposes them: one anchor size per pyramid level (8 x stride: 32..512) with
ratios 0.5/1/2, images resized to a shorter side of 800 capped at 1333 and padded to a multiple of
32, ImageNet mean/std on RGB in [0, 1], RoIAlign over the four finest levels (7x7 boxes, 14x14
masks), and the backbone's BatchNorm in `norm_eval` mode when fine-tuning from ImageNet weights
(running statistics fixed, scale and shift trained, as the official `norm_eval=True`).

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

from .backbone import HRNetBackbone
from .blocks import init_weights
from .data import IMAGENET_MEAN, IMAGENET_STD
from .checkpoints import Checkpoint, LoadReport, load_state_dict, read_checkpoint
from .errors import CheckpointError, ConfigError
from .heads import FeaturePyramidHead
from .spec import HRNetSpec, get_spec

DETECTORS = ("faster_rcnn", "mask_rcnn")
# How the HRNet body's BatchNorm behaves in training: "norm_eval" (official HRNet-Object-Detection:
# statistics fixed, affine trained), "frozen" (FrozenBatchNorm2d: nothing trained, torchvision's
# choice for fine-tuning), "train" (ordinary BatchNorm, for training from scratch).
BACKBONE_NORMS = ("norm_eval", "frozen", "train")
# Official: anchor scale 8 on strides 4..64, three aspect ratios per location.
ANCHOR_SIZES = ((32,), (64,), (128,), (256,), (512,))
ANCHOR_RATIOS = (0.5, 1.0, 2.0)
SIZE_DIVISOR = 32
IMAGE_MEAN, IMAGE_STD = IMAGENET_MEAN, IMAGENET_STD  # the official detector configs' RGB statistics


class HRNetV2p(nn.Module):
    """(N, 3, H, W) -> OrderedDict "0".."4" of (N, out_channels, H/s, W/s) for s = 4, 8, 16, 32, 64.

    `body` is the HRNet backbone (official key names, so ImageNet checkpoints load into it) and
    `fpn` the HRNetV2p pyramid (the official HRFPN neck). `out_channels` is what torchvision's
    detectors read.
    """

    def __init__(self, spec: HRNetSpec, *, out_channels: int = 256, norm_eval: bool = False):
        super().__init__()
        self.body = HRNetBackbone(spec)
        self.fpn = FeaturePyramidHead(in_channels=self.body.channels, out_channels=out_channels, num_levels=5)
        self.out_channels = out_channels
        self.norm_eval = norm_eval
        init_weights(self.body)

    def train(self, mode: bool = True) -> "HRNetV2p":
        """With `norm_eval`, the body's BatchNorm layers stay in eval mode (running statistics used and
        kept) while their weights still train: the official backbone's `norm_eval=True`."""
        super().train(mode)
        if mode and self.norm_eval:
            for module in self.body.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        return self.fpn(self.body(x))


ANCHOR_CONVENTIONS = ("torchvision", "mmdet-v1", "mmdet-v2")


class HRNetAnchors(AnchorGenerator):
    """torchvision's anchor grid with the base anchors of the publisher whose weights are loaded.

    "torchvision": centred on each cell's corner, rounded; "mmdet-v1" (HRNet-Object-Detection):
    centred at 0.5 (stride - 1) with +1 pixel widths, rounded; "mmdet-v2": centred on the corner,
    not rounded. The RPN's regression was trained against one of them, so the proposals of a
    loaded checkpoint match its publisher's only with its own anchors (benchmarks/detection_conventions.py).
    """

    def __init__(self, convention: str = "torchvision"):
        if convention not in ANCHOR_CONVENTIONS:
            raise ConfigError(f"unknown anchor convention {convention!r}; choose one of {', '.join(ANCHOR_CONVENTIONS)}")
        super().__init__(sizes=ANCHOR_SIZES, aspect_ratios=(ANCHOR_RATIOS,) * len(ANCHOR_SIZES))
        self.convention = convention
        if convention != "torchvision":
            self.cell_anchors = [self._publisher_anchors(size[0] // 8, convention) for size in ANCHOR_SIZES]

    @staticmethod
    def _publisher_anchors(stride: int, convention: str) -> torch.Tensor:
        """(3, 4) base anchors (scale 8, ratios 0.5/1/2, ratio-major) of one level."""
        h_ratios = torch.sqrt(torch.tensor(ANCHOR_RATIOS))
        ws, hs = 8 * stride / h_ratios, 8 * stride * h_ratios
        if convention == "mmdet-v2":
            return torch.stack([-0.5 * ws, -0.5 * hs, 0.5 * ws, 0.5 * hs], dim=1)
        centre = 0.5 * (stride - 1)
        return torch.round(torch.stack([centre - 0.5 * (ws - 1), centre - 0.5 * (hs - 1),
                                        centre + 0.5 * (ws - 1), centre + 0.5 * (hs - 1)], dim=1))


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
    backbone_norm: str = "train",
    checkpoint: str | os.PathLike | Checkpoint | None = None,
    min_size: int | Sequence[int] = 800,
    max_size: int = 1333,
    fpn_channels: int = 256,
    representation_size: int = 1024,
    anchors: str | None = None,
    **detector_options: Any,
) -> nn.Module:
    """Faster R-CNN or Mask R-CNN with an HRNetV2p backbone.

    num_classes: object classes plus one for the background (81 for COCO's 80 classes).
    backbone_norm: one of BACKBONE_NORMS: "norm_eval" (the official setting for fine-tuning from
    ImageNet weights: statistics fixed, affine trained), "frozen" (FrozenBatchNorm2d), "train"
    (from scratch). checkpoint: the weights of a whole detector (this library's, or the official
    HRNet-Object-Detection / mmdetection layouts), or an ImageNet classification checkpoint
    (official, timm or hrnet) for the HRNet body only; loaded before the BatchNorm is frozen. min_size: the shorter side; a
    sequence makes training pick one at random per batch (multi-scale training) and evaluation
    use the last. fpn_channels (256) and representation_size (the box head's two FC layers,
    1024) are the official widths; smaller ones make quick experiments. `anchors`: the base-anchor
    convention (HRNetAnchors); None takes the checkpoint layout's (mmdet-v1 for HRNet-Object-
    Detection files, mmdet-v2 for mmdetection's), else torchvision's. `detector_options` go to
    torchvision's FasterRCNN/MaskRCNN (e.g. rpn_post_nms_top_n_train, box_score_thresh).
    """
    if detector not in DETECTORS:
        raise ConfigError(f"unknown detector {detector!r}; choose one of {', '.join(DETECTORS)}")
    if backbone_norm not in BACKBONE_NORMS:
        raise ConfigError(f"unknown backbone_norm {backbone_norm!r}; choose one of {', '.join(BACKBONE_NORMS)}")
    if num_classes < 2:
        raise ConfigError(f"num_classes={num_classes} must count the background too (object classes + 1), so >= 2")
    loaded = read_checkpoint(checkpoint) if checkpoint is not None else None
    if anchors is None:
        anchors = loaded.layout.implies.get("anchors", "torchvision") if loaded is not None else "torchvision"
    backbone = HRNetV2p(get_spec(spec), out_channels=fpn_channels, norm_eval=backbone_norm == "norm_eval")
    model_type = MaskRCNN if detector == "mask_rcnn" else FasterRCNN
    sizes = tuple(min_size) if isinstance(min_size, Sequence) else (min_size,)
    # torchvision's default RoI poolers already read levels "0".."3" (strides 4..32), as the official
    # RoI extractors do; the stride-64 level "4" only feeds the RPN.
    pooled = 7 * 7 * fpn_channels
    if detector == "mask_rcnn":
        # torchvision's mask head: four 3x3 convs of 256, a 2x deconv, a 1x1 conv per class (as official).
        detector_options.setdefault("mask_predictor", MaskRCNNPredictor(256, 256, num_classes))
    model = model_type(backbone, num_classes=None, min_size=sizes, max_size=max_size,
                       image_mean=list(IMAGE_MEAN), image_std=list(IMAGE_STD),
                       rpn_anchor_generator=HRNetAnchors(anchors),
                       box_head=TwoMLPHead(pooled, representation_size),
                       box_predictor=FastRCNNPredictor(representation_size, num_classes),
                       size_divisible=SIZE_DIVISOR, **detector_options)
    if loaded is not None:
        load_weights(model, loaded)
        if anchors != "torchvision":
            model.load_report.notes.append(f"anchors: the {anchors} base anchors the checkpoint's RPN was trained with")
    if backbone_norm == "frozen":
        freeze_batchnorm(backbone.body)
    return model


def load_weights(model: nn.Module, source: str | os.PathLike | Checkpoint) -> LoadReport:
    """Load a whole detector's weights into `model` (this library's, HRNet-Object-Detection's or
    mmdetection's layout), or, for a checkpoint without detector keys (an ImageNet classifier), its
    HRNet backbone into `model.backbone.body`."""
    loaded = read_checkpoint(source)
    if any(key.startswith("backbone.body.") for key in loaded.state):
        report = load_state_dict(model, loaded.state, source=loaded.source, layout=loaded.layout)
    else:
        report = load_backbone_checkpoint(model.backbone.body, loaded.state, label=loaded.source)
    model.load_report = report
    return report


def load_backbone_checkpoint(body: nn.Module, source: str | os.PathLike | Mapping[str, torch.Tensor], *,
                             label: str | None = None) -> LoadReport:
    """Load the HRNet weights of an ImageNet classification (or pose/segmentation) checkpoint into a
    detector's backbone body (`model.backbone.body`); the checkpoint's head is ignored.

    Works on a body already frozen (FrozenBatchNorm2d has no `num_batches_tracked`).
    """
    state = read_checkpoint(source).state if not isinstance(source, Mapping) else dict(source)
    label = label or (str(source) if not isinstance(source, Mapping) else "state dict")
    backbone_state = {k: v for k, v in state.items() if k.startswith("backbone.")}
    if not backbone_state:
        raise CheckpointError(f"{label}: no HRNet backbone weights (keys conv1.*, stage2.*, ...) in the checkpoint")
    if not any(k.endswith("num_batches_tracked") for k in body.state_dict()):
        backbone_state = {k: v for k, v in backbone_state.items() if not k.endswith("num_batches_tracked")}
    return load_state_dict(body, backbone_state, source=label)
