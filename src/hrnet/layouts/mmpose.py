"""mmpose top-down heatmap models with an HRNet backbone.

mmpose's `backbones/hrnet.py` registers the official module names (`build_norm_layer(..., postfix)`
gives `bn1`, ...), nearest upsampling, and only `fuse_layers.0` in the last stage-4 module, as
`pose_hrnet.py`. The head is one 1x1 conv: `keypoint_head.final_layer` in 0.x
(`TopdownHeatmapSimpleHead`, `num_deconv_layers=0`), `head.final_layer` in 1.x (`HeatmapHead`),
where a `data_preprocessor.{mean,std}` may be saved too (not weights). Files: mmcv's
`{"meta", "state_dict"}` containers (unwrapped by `checkpoints.py`).
"""

from __future__ import annotations

from typing import Sequence

from . import Layout, State, rename


def _is_mmpose(keys: Sequence[str]) -> bool:
    return any(k.startswith("keypoint_head.final_layer.") for k in keys) and any(k.startswith("backbone.conv1.")
                                                                             for k in keys)


def _convert(state: State) -> State:
    return rename(state, [("keypoint_head.", "head.")])


def _drop_preprocessor(keys: Sequence[str]) -> bool:
    return any(k.startswith("data_preprocessor.") for k in keys) and any(k.startswith("head.final_layer.")
                                                                      for k in keys)


LAYOUTS = (
    Layout(name="mmpose-0.x", description="mmpose 0.x top-down heatmap model (keypoint_head.final_layer)",
           provenance="mmpose 0.x mmpose/models/backbones/hrnet.py, heads/topdown_heatmap_simple_head.py",
           matches=_is_mmpose, convert=_convert),
    Layout(name="mmpose-1.x", description="mmpose 1.x top-down heatmap model (data_preprocessor dropped)",
           provenance="mmpose 1.x mmpose/models/heads/heatmap_heads/heatmap_head.py, pose_estimators/base.py",
           matches=_drop_preprocessor,
           convert=lambda state: {k: v for k, v in state.items() if not k.startswith("data_preprocessor.")}),
)
