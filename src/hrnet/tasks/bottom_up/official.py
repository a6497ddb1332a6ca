"""Models and test settings from an official HigherHRNet experiment yaml
(HRNet/HigherHRNet-Human-Pose-Estimation `experiments/coco/higher_hrnet/*.yaml`).

    cfg = yaml.safe_load(open("w32_512_adam_lr1e-3.yaml"))
    model = model_from_official(cfg, checkpoint="pose_higher_hrnet_w32_512.pth")
    keypoints, scores = predict_people(model, rgb, settings_from_official(cfg))
"""

from __future__ import annotations

import ast
import os
from typing import Any, Mapping

from hrnet.backbone import HRNetBackbone
from hrnet.blocks import init_weights
from hrnet.checkpoints import load_checkpoint
from hrnet.errors import ConfigError
from hrnet.heads.higher import HigherHRNetHead, options_from_official
from hrnet.models import HRNet
from hrnet.spec import HRNetSpec

from .inference import BottomUpSettings


def model_from_official(cfg: Mapping[str, Any], *, checkpoint: str | os.PathLike | None = None) -> HRNet:
    """The official architecture of `cfg` (backbone from MODEL.EXTRA, head from
    `heads.higher.options_from_official`), with `checkpoint` loaded strictly when given
    (`model.load_report` says what was loaded)."""
    options = options_from_official(cfg)  # first: it names a missing MODEL / EXTRA field
    spec = HRNetSpec.from_official(cfg["MODEL"]["EXTRA"]).replace(multi_scale_output=False)
    backbone = HRNetBackbone(spec)
    head = HigherHRNetHead(in_channels=backbone.channels, **options)
    model = HRNet(backbone=backbone, head=head, task="bottom_up_pose")
    init_weights(model)
    if checkpoint is not None:
        model.load_report = load_checkpoint(model, checkpoint)
    return model


def _literal(value: Any) -> Any:
    # yacs reads "(True, True)" written as a string in the yamls as a tuple.
    return ast.literal_eval(value) if isinstance(value, str) else value


def settings_from_official(cfg: Mapping[str, Any]) -> BottomUpSettings:
    """BottomUpSettings of the yaml's TEST section (official defaults where the yaml is silent:
    ADJUST, REFINE, TAG_THRESHOLD 1.0) and DATASET.INPUT_SIZE / MAX_NUM_PEOPLE."""
    test, dataset = cfg.get("TEST", {}), cfg.get("DATASET", {})
    if not _literal(test.get("PROJECT2IMAGE", True)):
        raise ConfigError("TEST.PROJECT2IMAGE False is not supported: every official config projects to the image")
    kernel = int(test.get("NMS_KERNEL", 5))
    if int(test.get("NMS_PADDING", (kernel - 1) // 2)) != (kernel - 1) // 2:
        raise ConfigError(f"TEST.NMS_PADDING must be (NMS_KERNEL - 1) / 2 = {(kernel - 1) // 2}")
    return BottomUpSettings(
        input_size=int(dataset.get("INPUT_SIZE", 512)), scales=tuple(_literal(test.get("SCALE_FACTOR", [1]))),
        flip=bool(test.get("FLIP_TEST", True)), adjust=bool(test.get("ADJUST", True)),
        refine=bool(test.get("REFINE", True)), detection_threshold=float(test.get("DETECTION_THRESHOLD", 0.1)),
        tag_threshold=float(test.get("TAG_THRESHOLD", 1.0)), max_people=int(dataset.get("MAX_NUM_PEOPLE", 30)),
        nms_kernel=kernel)
