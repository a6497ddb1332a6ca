"""mmsegmentation HRNet segmentors: FCN-HRNet (`fcn_hr18.py`) and OCRNet-HRNet (`ocrnet_hr18.py`).

The backbone keys are the official ones (mmseg `backbones/hrnet.py`). What differs from the
official heads (`seg_hrnet.py`, `seg_hrnet_ocr.py`), and so is implied by these layouts:

- every `ConvModule` followed by a BatchNorm has no conv bias (`bias='auto'`): the heads are built
  with `conv_bias=False`;
- every interpolation uses `align_corners=False` (fusion, the concatenation of the branches);
- the fusion upsamples bilinearly (not the official nearest of classification/pose).

Key map (mmcv's `ConvModule` names `conv`, `bn`; `decode_head.` prefix):
FCN  `convs.0.conv` -> `last_layer.0`, `convs.0.bn` -> `last_layer.1`, `conv_seg` -> `last_layer.3`.
OCR  `0.*` (the FCN auxiliary head) -> `aux_head.{0,1,3}`; `1.bottleneck.{conv,bn}` -> `conv3x3_ocr.{0,1}`;
     `1.object_context_block.{query,key}_project.{i}.{conv,bn}` -> `f_pixel` / `f_object` `.{2i, 2i+1.0}`;
     `value_project` -> `f_down`, `out_project` -> `f_up`; `object_context_block.bottleneck` ->
     `ocr_distri_head.conv_bn_dropout.{0,1.0}`; `1.conv_seg` -> `cls_head`.
"""

from __future__ import annotations

from typing import Sequence

from . import Layout, rename

IMPLIES = {"task": "segmentation", "fuse_mode": "bilinear", "align_corners": False, "conv_bias": False}
OCR_BLOCK = "head.ocr_distri_head.object_context_block."


def _conv_module(old: str, new_conv: str, new_bn: str) -> list[tuple[str, str]]:
    return [(old + "conv.", new_conv), (old + "bn.", new_bn)]


def _fcn_rules(prefix: str, target: str) -> list[tuple[str, str]]:
    return [*_conv_module(prefix + "convs.0.", target + "0.", target + "1."), (prefix + "conv_seg.", target + "3.")]


def _projection_rules(old: str, new: str, depth: int) -> list[tuple[str, str]]:
    if depth == 1:
        return _conv_module(old + ".", new + ".0.", new + ".1.0.")
    return [rule for i in range(depth) for rule in _conv_module(f"{old}.{i}.", f"{new}.{2 * i}.", f"{new}.{2 * i + 1}.0.")]


OCR_RULES = [
    *_fcn_rules("decode_head.0.", "head.aux_head."),
    *_conv_module("decode_head.1.bottleneck.", "head.conv3x3_ocr.0.", "head.conv3x3_ocr.1."),
    *_projection_rules("decode_head.1.object_context_block.query_project", OCR_BLOCK + "f_pixel", 2),
    *_projection_rules("decode_head.1.object_context_block.key_project", OCR_BLOCK + "f_object", 2),
    *_projection_rules("decode_head.1.object_context_block.value_project", OCR_BLOCK + "f_down", 1),
    *_projection_rules("decode_head.1.object_context_block.out_project", OCR_BLOCK + "f_up", 1),
    *_conv_module("decode_head.1.object_context_block.bottleneck.", "head.ocr_distri_head.conv_bn_dropout.0.",
                  "head.ocr_distri_head.conv_bn_dropout.1.0."),
    ("decode_head.1.conv_seg.", "head.cls_head."),
]


def _is_fcn(keys: Sequence[str]) -> bool:
    return "decode_head.conv_seg.weight" in keys and "decode_head.convs.0.conv.weight" in keys


def _is_ocr(keys: Sequence[str]) -> bool:
    return "decode_head.1.conv_seg.weight" in keys and "decode_head.1.bottleneck.conv.weight" in keys


LAYOUTS = (
    Layout(name="mmseg-fcn",
           description="mmsegmentation FCN-HRNet (decode_head.convs, conv_seg): head conv without bias, "
                       "bilinear fusion with align_corners=False",
           provenance="mmsegmentation mmseg/models/backbones/hrnet.py, decode_heads/fcn_head.py, "
                      "configs/_base_/models/fcn_hr18.py",
           matches=_is_fcn, convert=lambda state: rename(state, _fcn_rules("decode_head.", "head.last_layer.")),
           implies={**IMPLIES, "head": None}),
    Layout(name="mmseg-ocr",
           description="mmsegmentation OCRNet-HRNet (decode_head.0 FCN auxiliary, decode_head.1 OCR): head convs "
                       "without bias, bilinear fusion with align_corners=False",
           provenance="mmsegmentation mmseg/models/decode_heads/ocr_head.py, utils/self_attention_block.py, "
                      "configs/_base_/models/ocrnet_hr18.py",
           matches=_is_ocr, convert=lambda state: rename(state, OCR_RULES), implies={**IMPLIES, "head": "ocr"}),
)
