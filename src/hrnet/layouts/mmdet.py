"""HRNet detectors of HRNet-Object-Detection (mmdetection v1) and mmdetection 2.x/3.x, mapped onto the
torchvision detector of `hrnet.detectors` (Faster / Mask R-CNN on HRNetV2p).

The backbone and neck compute the same function in all three (same weights, same convolutions):

    official (v1)                     mmdetection 2.x/3.x                torchvision model
    backbone.*                        backbone.*                         backbone.body.*
    neck.reduction_conv.0             neck.reduction_conv.conv           backbone.fpn.reduction_conv.0
    neck.fpn_conv.{i}                 neck.fpn_convs.{i}.conv            backbone.fpn.fpn_conv.{i}
    rpn_head.rpn_conv / rpn_cls / rpn_reg                                rpn.head.conv.0.0 / cls_logits / bbox_pred
    bbox_head.shared_fcs.{0,1}        roi_head.bbox_head.shared_fcs.*    roi_heads.box_head.fc6 / fc7
    bbox_head.fc_cls / fc_reg         roi_head.bbox_head.fc_cls / fc_reg roi_heads.box_predictor.cls_score / bbox_pred
    mask_head.convs.{i}.conv          roi_head.mask_head.convs.{i}.conv  roi_heads.mask_head.{i}.0
    mask_head.upsample / conv_logits  roi_head.mask_head.*               roi_heads.mask_predictor.conv5_mask / mask_fcn_logits

The RPN's sigmoid objectness (one channel per anchor) and its deltas (anchor-major, dx, dy, dw, dh)
have torchvision's channel order; the box head's target stds (0.1, 0.1, 0.2, 0.2) are torchvision's
box-coder weights (10, 10, 5, 5). The class order differs: v1 and torchvision put the background
first, mmdetection 2.x last (`fc_cls` rows are rotated; its class-specific `fc_reg` and mask logits
have no background rows, so zero rows are added). What still differs in the boxes (anchor centres,
the +1 pixel conventions, RoIAlign variants) is stated in the README; the anchors follow the layout
(`hrnet.detectors.HRNetAnchors`).
"""

from __future__ import annotations

from typing import Sequence

import torch

from . import Layout, State, rename

COMMON = [
    ("backbone.", "backbone.body."),
    ("rpn_head.rpn_conv.", "rpn.head.conv.0.0."),
    ("rpn_head.rpn_cls.", "rpn.head.cls_logits."),
    ("rpn_head.rpn_reg.", "rpn.head.bbox_pred."),
]


def _head_rules(prefix: str) -> list[tuple[str, str]]:
    rules = [(f"{prefix}bbox_head.shared_fcs.0.", "roi_heads.box_head.fc6."),
             (f"{prefix}bbox_head.shared_fcs.1.", "roi_heads.box_head.fc7."),
             (f"{prefix}bbox_head.fc_cls.", "roi_heads.box_predictor.cls_score."),
             (f"{prefix}bbox_head.fc_reg.", "roi_heads.box_predictor.bbox_pred."),
             (f"{prefix}mask_head.upsample.", "roi_heads.mask_predictor.conv5_mask."),
             (f"{prefix}mask_head.conv_logits.", "roi_heads.mask_predictor.mask_fcn_logits.")]
    return rules + [(f"{prefix}mask_head.convs.{i}.conv.", f"roi_heads.mask_head.{i}.0.") for i in range(4)]


V1_RULES = [*COMMON, ("neck.reduction_conv.0.", "backbone.fpn.reduction_conv.0."),
            *[(f"neck.fpn_conv.{i}.", f"backbone.fpn.fpn_conv.{i}.") for i in range(8)], *_head_rules("")]
V2_RULES = [*COMMON, ("neck.reduction_conv.conv.", "backbone.fpn.reduction_conv.0."),
            *[(f"neck.fpn_convs.{i}.conv.", f"backbone.fpn.fpn_conv.{i}.") for i in range(8)],
            *_head_rules("roi_head.")]


def _background_first(state: State) -> State:
    """mmdetection 2.x -> torchvision class order: background (last row of fc_cls) moves to row 0; the
    class-specific regression and mask logits, which have no background rows, get zero ones."""
    out = dict(state)
    for key in ("roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.cls_score.bias"):
        if key in out:
            out[key] = torch.cat([out[key][-1:], out[key][:-1]])
    for key, rows in (("roi_heads.box_predictor.bbox_pred.", 4), ("roi_heads.mask_predictor.mask_fcn_logits.", 1)):
        for suffix in ("weight", "bias"):
            if key + suffix in out:
                value = out[key + suffix]
                out[key + suffix] = torch.cat([value.new_zeros(rows, *value.shape[1:]), value])
    return out


def _is_v1(keys: Sequence[str]) -> bool:
    return "neck.reduction_conv.0.weight" in keys and any(k.startswith("bbox_head.") for k in keys)


def _is_v2(keys: Sequence[str]) -> bool:
    return "neck.reduction_conv.conv.weight" in keys and any(k.startswith("roi_head.bbox_head.") for k in keys)


def _is_old_library_detector(keys: Sequence[str]) -> bool:
    return "backbone.fpn.reduction_conv.conv.weight" in keys


LAYOUTS = (
    Layout(name="hrnet-object-detection",
           description="HRNet-Object-Detection (mmdetection v1) detector: neck, RPN and box head mapped onto "
                       "torchvision's (background first, as there)",
           provenance="HRNet-Object-Detection mmdet/models/necks/hrfpn.py, anchor_heads/rpn_head.py, "
                      "bbox_heads/convfc_bbox_head.py, mask_heads/fcn_mask_head.py",
           matches=_is_v1, convert=lambda state: rename(state, V1_RULES),
           implies={"task": "detection", "anchors": "mmdet-v1"}),
    Layout(name="mmdet",
           description="mmdetection 2.x/3.x HRNet detector: neck, RPN and box head mapped onto torchvision's "
                       "(background moved from last to first, zero background rows added to fc_reg/mask logits)",
           provenance="mmdetection mmdet/models/necks/hrfpn.py, dense_heads/rpn_head.py, "
                      "roi_heads/bbox_heads/convfc_bbox_head.py, roi_heads/mask_heads/fcn_mask_head.py",
           matches=_is_v2, convert=lambda state: _background_first(rename(state, V2_RULES)),
           implies={"task": "detection", "anchors": "mmdet-v2"}),
    Layout(name="hrnet-detector-0.1",
           description="a detector of this library's first release (neck convs renamed to the official "
                       "reduction_conv.0 / fpn_conv.N)",
           provenance="hrnet 0.1 heads/pyramid.py",
           matches=_is_old_library_detector,
           convert=lambda state: rename(state, [("backbone.fpn.reduction_conv.conv.", "backbone.fpn.reduction_conv.0."),
                                                *[(f"backbone.fpn.fpn_convs.{i}.conv.", f"backbone.fpn.fpn_conv.{i}.")
                                                  for i in range(8)]]),
           implies={"task": "detection"}),
)
