"""HigherHRNet (bottom-up pose) checkpoints: the official files and mmpose 0.x's AssociativeEmbedding.

- Official (HRNet/HigherHRNet-Human-Pose-Estimation `lib/models/pose_higher_hrnet.py`,
  `pose_higher_hrnet_w32_512.pth`): a bare state dict with the backbone names (`conv1`, ...,
  `stage4.2.fuse_layers.0.*`) and the head's `final_layers.*` / `deconv_layers.*` at the root.
- Official FP16 (`pose_higher_hrnet_w32_640.pth`, `pose_higher_hrnet_w48_640.pth`): the same names
  under `1.`, the index of the model inside `network_to_half`'s `Sequential(tofp16, model, tofp32)`;
  conv weights may be stored as float16 (the official evaluation of these models ran in float16).
- mmpose 0.x (`AssociativeEmbedding` + `HRNet` + `AEHigherResolutionHead`): `backbone.<official>`,
  `keypoint_head.final_layers.*`, `keypoint_head.deconv_layers.*` (mmpose-trained weights, in an
  mmcv `{"meta", "state_dict"}` container that `checkpoints.py` unwraps).
"""

from __future__ import annotations

from typing import Sequence

from . import Layout, State, rename
from .official import canonical_key

HEAD_ROOTS = ("final_layers.", "deconv_layers.")
FP16_PREFIX = "1."


def _is_official(keys: Sequence[str]) -> bool:
    return any(k.startswith(HEAD_ROOTS) for k in keys) and any(k.startswith("conv1.") for k in keys)


def _is_official_fp16(keys: Sequence[str]) -> bool:
    return bool(keys) and all(k.startswith(FP16_PREFIX) for k in keys) and _is_official(
        [k[len(FP16_PREFIX):] for k in keys])


def _is_mmpose(keys: Sequence[str]) -> bool:
    return any(k.startswith("keypoint_head.final_layers.") for k in keys) and any(
        k.startswith("backbone.conv1.") for k in keys)


def _convert_fp16(state: State) -> State:
    # Float16 weights become float32 here, so the model computes in float32 as everywhere else.
    return {canonical_key(k[len(FP16_PREFIX):]): v.float() if v.is_floating_point() else v for k, v in state.items()}


LAYOUTS = (
    Layout(name="higher-hrnet-fp16",
           description="official HigherHRNet FP16 checkpoint (keys under '1.', float16 weights loaded as float32; "
                       "the official evaluation ran in float16)",
           provenance="HigherHRNet-Human-Pose-Estimation lib/models/pose_higher_hrnet.py, lib/fp16_utils "
                      "network_to_half; pose_higher_hrnet_w32_640.pth / w48_640.pth",
           matches=_is_official_fp16, convert=_convert_fp16),
    Layout(name="higher-hrnet", description="official HigherHRNet checkpoint (final_layers / deconv_layers)",
           provenance="HigherHRNet-Human-Pose-Estimation lib/models/pose_higher_hrnet.py; "
                      "pose_higher_hrnet_w32_512.pth",
           matches=_is_official, convert=lambda state: {canonical_key(k): v for k, v in state.items()}),
    Layout(name="mmpose-0.x-higher-hrnet",
           description="mmpose 0.x AssociativeEmbedding HigherHRNet (keypoint_head.final_layers / deconv_layers)",
           provenance="mmpose 0.x mmpose/models/detectors/associative_embedding.py, "
                      "heads/ae_higher_resolution_head.py, backbones/hrnet.py",
           matches=_is_mmpose, convert=lambda state: rename(state, [("keypoint_head.", "head.")])),
)
