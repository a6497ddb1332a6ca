"""The official HRNet layouts (and timm's, and this library's): one function from any of their keys to
this library's `backbone.` / `head.` keys.

- HRNet-Image-Classification `cls_hrnet.py`, deep-high-resolution-net.pytorch `pose_hrnet.py`, timm
  `hrnet.py`: the bare official names at the root (`conv1`, `stage4.2.fuse_layers...`, `classifier`).
- HRNet-Semantic-Segmentation `seg_hrnet(_ocr).py`: the same names behind FullModel's `model.` prefix,
  with the loss' class weights saved as `loss.*`.
- DDP's `module.` and torch.compile's `_orig_mod.` wrap any of them; this library's own files
  already use `backbone.` / `head.`.
"""

from __future__ import annotations

from typing import Sequence

from . import Layout, State

# First components of the official backbone keys; everything else at the root belongs to a head.
BACKBONE_ROOTS = ("conv1", "bn1", "conv2", "bn2", "layer1", "transition1", "transition2", "transition3",
                  "stage2", "stage3", "stage4",
                  "stem", "neck")  # this library's Lite-HRNet backbone (see hrnet.layouts.lite_hrnet)
WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.")


def strip_wrappers(key: str) -> str:
    while key.startswith(WRAPPER_PREFIXES):
        key = key.split(".", 1)[1]
    return key


def canonical_key(key: str) -> str:
    """Any official-style key -> `backbone.<official>` / `head.<official>`."""
    key = strip_wrappers(key)
    if key.startswith(("backbone.", "head.")):
        return key
    root = key.split(".", 1)[0]
    return ("backbone." if root in BACKBONE_ROOTS else "head.") + key


def official_key(key: str) -> str:
    """Library key -> the official repositories' key (no `model.` prefix)."""
    return canonical_key(key).split(".", 1)[1]


def convert(state: State) -> State:
    # The segmentation repo's FullModel saves its loss (class weights) beside the model.
    return {canonical_key(k): v for k, v in state.items() if not strip_wrappers(k).startswith("loss.")}


def _any(keys: Sequence[str]) -> bool:
    return True


LAYOUT = Layout(
    name="official", description="",
    provenance="HRNet-Image-Classification lib/models/cls_hrnet.py; deep-high-resolution-net.pytorch "
               "lib/models/pose_hrnet.py; HRNet-Semantic-Segmentation lib/models/seg_hrnet(_ocr).py; "
               "timm timm/models/hrnet.py",
    matches=_any, convert=convert)
