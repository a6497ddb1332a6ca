"""Whole models (backbone + head) and `create_model`, the one entry point that builds them."""

from __future__ import annotations

import os
from typing import Mapping

import torch
from torch import nn

from .backbone import HRNetBackbone
from .checkpoints import load_state_dict, read_state_dict
from .heads import ClassificationHead, OCRHead, PoseHead, SegmentationHead
from .spec import VARIANTS, HRNetSpec, get_spec

TASKS = ("classification", "pose", "segmentation", "detection", "backbone")
DEFAULT_CLASSES = {"classification": 1000, "pose": 17, "segmentation": 19, "detection": 91}
# (task, head option) -> head class.
HEADS: dict[tuple[str, str | None], type[nn.Module]] = {
    ("classification", None): ClassificationHead,
    ("pose", None): PoseHead,
    ("segmentation", None): SegmentationHead,
    ("segmentation", "ocr"): OCRHead,
}


class HRNet(nn.Module):
    """An HRNet backbone with a task head: (N, 3, H, W) -> the head's output.

    In eval mode the output is one tensor, as the official models return: logits (N, classes),
    heatmaps (N, K, H/4, W/4) or segmentation logits (N, classes, H/4, W/4). In training mode an
    OCR model returns (aux, main); `forward_all` returns that tuple in either mode.
    """

    def __init__(self, *, backbone: HRNetBackbone, head: nn.Module, task: str):
        super().__init__()
        self.task = task
        self.backbone = backbone
        self.head = head

    @property
    def spec(self) -> HRNetSpec:
        return self.backbone.spec

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.head(self.backbone(x))
        return out if isinstance(out, tuple) else (out,)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        out = self.forward_all(x)
        return out if self.training and len(out) > 1 else out[-1]


def list_models() -> list[str]:
    """Names of the registered variants (any of them works with every task)."""
    return sorted(VARIANTS)


def _task_spec(spec: HRNetSpec, task: str, head: str | None, align_corners: bool | None) -> HRNetSpec:
    """The backbone each official task uses: pose keeps one output branch in its last module;
    segmentation fuses with bilinear interpolation (align_corners as configured: True in the
    official OCR configs, False in the plain W48 ones); the others with nearest upsampling."""
    if task == "pose":
        spec = spec.replace(multi_scale_output=False)
    if task == "segmentation":
        default = spec.align_corners if spec.fuse_mode == "bilinear" else head == "ocr"
        return spec.replace(fuse_mode="bilinear", align_corners=default if align_corners is None else align_corners)
    if align_corners is not None:
        spec = spec.replace(fuse_mode="bilinear", align_corners=align_corners)
    return spec


def _head_options(head_type: type[nn.Module], state: Mapping[str, torch.Tensor] | None) -> dict[str, int]:
    """Head sizes a checkpoint fixes: the classifier's class count and kernel, OCR widths."""
    if not state:
        return {}
    options = {}
    weight = state.get("head." + head_type.class_keys[0] + "weight")
    if weight is not None:
        options["num_classes"] = weight.shape[0]
        if head_type in (PoseHead, SegmentationHead):
            options["final_conv_kernel"] = weight.shape[-1]
    if head_type is OCRHead and "head.conv3x3_ocr.0.weight" in state:
        options["mid_channels"] = state["head.conv3x3_ocr.0.weight"].shape[0]
        options["key_channels"] = state["head.ocr_distri_head.object_context_block.f_pixel.0.weight"].shape[0]
    return options


def init_weights(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    # Dense-prediction classifiers start near zero, as in the official pose and segmentation code.
    head = getattr(model, "head", None)
    for name, param in head.named_parameters() if head is not None else ():
        if name.startswith(getattr(head, "class_keys", ())) and not isinstance(head, ClassificationHead):
            nn.init.normal_(param, std=0.001) if param.dim() > 1 else nn.init.zeros_(param)


def create_model(
    arch: str | HRNetSpec,
    *,
    task: str = "classification",
    num_classes: int | None = None,
    head: str | None = None,
    align_corners: bool | None = None,
    checkpoint: str | os.PathLike | None = None,
    strict: bool = True,
    detector: str | None = None,
) -> nn.Module:
    """Build an HRNet for `task` from a registered name or a spec, optionally loading a checkpoint.

    task: "classification" | "pose" | "segmentation" | "detection" (torchvision Faster/Mask R-CNN
    on HRNetV2p, `detector="faster_rcnn"|"mask_rcnn"`) | "backbone" (the bare backbone, which
    returns the list of maps). `num_classes` is the keypoint count for pose; when None it comes
    from the checkpoint, else the task default (1000, 17, 19). `head="ocr"` selects HRNetV2 + OCR
    for segmentation. `align_corners` sets bilinear fusion (segmentation default: True with OCR,
    False without, as in the official configs). Head sizes a checkpoint fixes (OCR widths, the
    final kernel) are read from it.
    """
    spec = get_spec(arch)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if num_classes is not None and num_classes < 1:
        raise ValueError(f"num_classes must be a positive count, got {num_classes}")
    if detector is not None and task != "detection":
        raise ValueError(f"detector={detector!r} needs task='detection'")
    spec = _task_spec(spec, task, head, align_corners)
    if task == "detection":
        return _create_detector(spec, num_classes=num_classes, detector=detector or "faster_rcnn",
                                checkpoint=checkpoint)
    state = read_state_dict(checkpoint) if checkpoint is not None else None
    backbone = HRNetBackbone(spec)
    if task == "backbone":
        if num_classes is not None or head is not None:
            raise ValueError("task='backbone' has no head: drop num_classes and head")
        model: nn.Module = backbone
    else:
        if (task, head) not in HEADS:
            known = [h for t, h in HEADS if t == task and h]
            raise ValueError(f"unknown head {head!r} for task {task!r}; choose None{''.join(', ' + h for h in known)}")
        head_type = HEADS[(task, head)]
        options = _head_options(head_type, state)
        options["num_classes"] = num_classes or options.get("num_classes") or DEFAULT_CLASSES[task]
        if task == "segmentation":
            options["align_corners"] = spec.align_corners
        model = HRNet(backbone=backbone, head=head_type(in_channels=backbone.channels, **options), task=task)
    init_weights(model)
    if state is not None:
        model.load_report = load_state_dict(model, state, source=str(checkpoint), strict=strict)
    return model


def _create_detector(spec: HRNetSpec, *, num_classes: int | None, detector: str,
                     checkpoint: str | os.PathLike | None) -> nn.Module:
    """A torchvision detector on HRNetV2p; a checkpoint is either a whole detector or, like an
    ImageNet classifier, fits only its HRNet backbone."""
    from .tasks.detection.models import build_detector

    return build_detector(spec, num_classes=num_classes or DEFAULT_CLASSES["detection"], detector=detector,
                          checkpoint=checkpoint)
