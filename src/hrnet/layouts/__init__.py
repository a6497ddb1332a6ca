"""Checkpoint key layouts of every publisher, each mapped to this library's keys in one tested place.

Inside the library a model's keys are `backbone.<official name>` and `head.<official name>` (a
detector's are torchvision's: `backbone.body.*`, `backbone.fpn.*`, `rpn.*`, `roi_heads.*`). A
`Layout` recognises a publisher's state dict by its keys, converts it to those keys, and says what
the layout implies about the model (`implies`: e.g. mmsegmentation's heads have no conv bias and
fuse with `align_corners=False`), which `create_model` applies and the load report states.

    official.py   HRNet-Image-Classification, deep-high-resolution-net.pytorch, HRNet-Semantic-
                  Segmentation (`model.` prefix, `loss.*`), timm, DDP's `module.`, this library
    mmpose.py     mmpose 0.x (`keypoint_head.`) and 1.x (`head.`) top-down heatmap models
    mmseg.py      mmsegmentation FCN-HRNet (`decode_head.convs/conv_seg`) and OCRNet-HRNet
    mmdet.py      HRNet-Object-Detection (mmdetection v1) and mmdetection 2.x/3.x HRNet detectors
    higher_hrnet.py  HigherHRNet bottom-up pose: the official files (also the FP16 `1.` prefix) and
                  mmpose 0.x AssociativeEmbedding (`keypoint_head.final_layers/deconv_layers`)
    lite_hrnet.py Lite-HRNet: the official repository / mmpose 0.x (`keypoint_head.`), mmpose 1.x
                  (`head.`), bare backbones (official stage0-2 -> stage2-4, `head_layer` -> `neck`)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Layout:
    """One publisher's key layout.

    `matches(keys)` tells it from the others (keys already stripped of wrapper prefixes);
    `convert(state)` returns the state under this library's keys; `implies` lists the model
    options the layout fixes; `description` is the load report's line ("" for the plain layout).
    """

    name: str
    description: str
    provenance: str
    matches: Callable[[Sequence[str]], bool]
    convert: Callable[[State], State]
    implies: Mapping[str, Any] = field(default_factory=dict)


def registered() -> tuple[Layout, ...]:
    """Every layout, most specific first; the official one matches anything and comes last."""
    from . import higher_hrnet, lite_hrnet, mmdet, mmpose, mmseg, official

    return (*mmdet.LAYOUTS, *mmseg.LAYOUTS, *lite_hrnet.LAYOUTS, *mmpose.LAYOUTS, *higher_hrnet.LAYOUTS,
            official.LAYOUT)


def recognise(keys: Sequence[str]) -> Layout:
    """The layout of a state dict with these (wrapper-stripped) keys."""
    return next(layout for layout in registered() if layout.matches(keys))


def by_name(name: str) -> Layout:
    for layout in registered():
        if layout.name == name:
            return layout
    raise KeyError(f"unknown checkpoint layout {name!r}; known: {', '.join(l.name for l in registered())}")


def rename(state: State, rules: Sequence[tuple[str, str]]) -> State:
    """Replace the first matching prefix of each key (rules are (old prefix, new prefix) pairs, tried
    in order); keys that match no rule are kept as they are."""
    out: State = {}
    for key, value in state.items():
        for old, new in rules:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out
