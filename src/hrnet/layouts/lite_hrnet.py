"""Lite-HRNet checkpoints: the official HRNet/Lite-HRNet repository, mmpose 0.x and mmpose 1.x.

The official `models/backbones/litehrnet.py` and mmpose's `mmpose/models/backbones/litehrnet.py` (0.x
and 1.x) register the same module tree, so their backbones have the same keys. The official repository
ran inside mmpose 0.13's `TopDown` model, so its files are laid out as mmpose 0.x's: `backbone.*`,
then `keypoint_head.final_layer` (`TopDownSimpleHead` / `TopdownHeatmapSimpleHead`, one 1x1 conv);
mmpose 1.x names the head `head.final_layer` (`HeatmapHead`) and may save `data_preprocessor.{mean,std}`
(not weights). Files are mmcv's `{"meta", "state_dict"}` containers (unwrapped by `checkpoints.py`).

Key map (official -> this library; `{s}` is the official stage index 0..2):

    stem.*                                          stem.*
    transition{s}.*                                 transition{s+1}.*
    stage{s}.{m}.layers.{k}.*  (LITE: joint blocks) stage{s+2}.{m}.layers.{k}.*
    stage{s}.{m}.layers.{b}.{k}.branch2.*  (NAIVE)  stage{s+2}.{m}.branches.{b}.{k}.branch2.*
    stage{s}.{m}.fuse_layers.*                      stage{s+2}.{m}.fuse_layers.*
    head_layer.projects.{i}.depthwise_conv.{conv,bn} neck.projects.{i}.{0,1}
    head_layer.projects.{i}.pointwise_conv.{conv,bn} neck.projects.{i}.{2,3}
    keypoint_head.* / head.*                        head.*

A bare backbone state dict (the official `LiteHRNet().state_dict()`, no `backbone.` prefix) loads too.
"""

from __future__ import annotations

import re
from typing import Sequence

from . import Layout, State

_STAGE = re.compile(r"backbone\.stage(\d+)\.(\d+)\.")
_NAIVE = re.compile(r"layers\.(\d+\.\d+\.branch2\.)")
_TRANSITION = re.compile(r"backbone\.transition(\d+)\.")
_PROJECT = re.compile(r"backbone\.head_layer\.projects\.(\d+)\.(depthwise|pointwise)_conv\.(conv|bn)\.")
_PROJECT_INDEX = {("depthwise", "conv"): 0, ("depthwise", "bn"): 1, ("pointwise", "conv"): 2, ("pointwise", "bn"): 3}
# First components of a bare official backbone state dict (no `backbone.` prefix).
BARE_ROOTS = ("stem.", "transition", "stage", "head_layer.")


def _is_lite_hrnet(keys: Sequence[str]) -> bool:
    """The official stem and the official stage numbering (this library's own files start at stage2)."""
    key_set = set(keys)
    for prefix in ("backbone.", ""):
        if f"{prefix}stem.conv1.conv.weight" in key_set and any(k.startswith(f"{prefix}stage0.") for k in keys):
            return True
    return False


def _backbone_key(key: str) -> str:
    """Official backbone key (with `backbone.`) -> this library's."""
    match = _PROJECT.match(key)
    if match:
        index = _PROJECT_INDEX[match.group(2), match.group(3)]
        return f"backbone.neck.projects.{match.group(1)}.{index}." + key[match.end():]
    match = _TRANSITION.match(key)
    if match:
        return f"backbone.transition{int(match.group(1)) + 1}." + key[match.end():]
    match = _STAGE.match(key)
    if match:
        rest = key[match.end():]
        rest = _NAIVE.sub(r"branches.\1", rest, count=1) if rest.startswith("layers.") else rest
        return f"backbone.stage{int(match.group(1)) + 2}.{match.group(2)}." + rest
    return key


def convert(state: State) -> State:
    out: State = {}
    for key, value in state.items():
        if key.startswith("data_preprocessor."):
            continue  # mmpose 1.x's input normalisation constants
        if key.startswith(BARE_ROOTS):
            key = "backbone." + key
        if key.startswith("keypoint_head."):
            key = "head." + key[len("keypoint_head."):]
        out[_backbone_key(key)] = value
    return out


def _with_head(prefix: str):
    def matches(keys: Sequence[str]) -> bool:
        return _is_lite_hrnet(keys) and any(k.startswith(prefix) for k in keys)
    return matches


def _bare_backbone(keys: Sequence[str]) -> bool:
    return _is_lite_hrnet(keys) and all(k.startswith(BARE_ROOTS) or k.startswith("backbone.") for k in keys)


PROVENANCE = ("HRNet/Lite-HRNet models/backbones/litehrnet.py; mmpose mmpose/models/backbones/litehrnet.py "
              "(0.x and 1.x)")
LAYOUTS = (
    Layout(name="lite-hrnet",
           description="Lite-HRNet of the official repository / mmpose 0.x (backbone.stage0-2, "
                       "keypoint_head.final_layer) mapped to stage2-4",
           provenance=PROVENANCE + "; mmpose 0.x heads/topdown_heatmap_simple_head.py, detectors/top_down.py",
           matches=_with_head("keypoint_head."), convert=convert),
    Layout(name="lite-hrnet-mmpose-1.x",
           description="Lite-HRNet of mmpose 1.x (backbone.stage0-2, head.final_layer; data_preprocessor "
                       "dropped) mapped to stage2-4",
           provenance=PROVENANCE + "; mmpose 1.x heads/heatmap_heads/heatmap_head.py, pose_estimators/base.py",
           matches=_with_head("head."), convert=convert),
    Layout(name="lite-hrnet-backbone",
           description="a bare Lite-HRNet backbone of the official repository / mmpose (stage0-2 mapped to "
                       "stage2-4)",
           provenance=PROVENANCE, matches=_bare_backbone, convert=convert),
)
