"""Whole models (backbone + head) and `create_model`, the one entry point that builds them."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from .backbone import HRNetBackbone
from .blocks import init_weights
from .checkpoints import Checkpoint, load_state_dict, read_checkpoint
from .errors import ConfigError
from .heads import ClassificationHead, HigherHRNetHead, OCRHead, PoseHead, SegmentationHead
from .spec import VARIANTS, HRNetSpec, get_spec

# task -> {head option -> head class}; None is the task's default head. The CLI's --task and --head
# choices and every "unknown head" message are derived from this registry.
HEADS: dict[str, dict[str | None, type[nn.Module]]] = {
    "classification": {None: ClassificationHead},
    "pose": {None: PoseHead},
    "segmentation": {None: SegmentationHead, "ocr": OCRHead},
    "bottom_up_pose": {None: HigherHRNetHead},
}
# Tasks built elsewhere: the torchvision detector (`detectors.py`) and the bare backbone.
TASKS = (*HEADS, "detection", "backbone")
DEFAULT_CLASSES = {"classification": 1000, "pose": 17, "segmentation": 19, "detection": 91, "bottom_up_pose": 17}


class HRNet(nn.Module):
    """An HRNet backbone with a task head: (N, 3, H, W) -> the head's output.

    In eval mode the output is one tensor, as the official models return: logits (N, classes),
    heatmaps (N, K, H/4, W/4) or segmentation logits (N, classes, H/4, W/4). In training mode an
    OCR model returns (aux, main); `forward_all` returns that tuple in either mode. A bottom-up
    (HigherHRNet) model returns its list of outputs in both modes, as the official model does:
    [(N, 2K, H/4, W/4) heatmaps + tags, (N, K, H/2, W/2) heatmaps].
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


def head_names(task: str) -> list[str]:
    """The `head=` choices of a task besides its default (None)."""
    return [name for name in HEADS.get(task, {}) if name is not None]


def _task_spec(spec: HRNetSpec, task: str, head: str | None, align_corners: bool | None) -> HRNetSpec:
    """The backbone each official task uses: pose (top-down and bottom-up) keeps one output branch
    in its last module; segmentation fuses with bilinear interpolation (align_corners as configured: True in the
    official OCR configs, False in the plain W48 ones); the others with nearest upsampling."""
    if task in ("pose", "bottom_up_pose"):
        spec = spec.replace(multi_scale_output=False)
    if task == "segmentation":
        default = spec.align_corners if spec.fuse_mode == "bilinear" else head == "ocr"
        return spec.replace(fuse_mode="bilinear", align_corners=default if align_corners is None else align_corners)
    if align_corners is not None:
        spec = spec.replace(fuse_mode="bilinear", align_corners=align_corners)
    return spec


def _check_arguments(task: str, head: str | None, num_classes: int | None, detector: str | None) -> None:
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if num_classes is not None and num_classes < 1:
        raise ConfigError(f"num_classes must be a positive count, got {num_classes}")
    if detector is not None and task != "detection":
        raise ConfigError(f"detector={detector!r} needs task='detection'")
    if task == "backbone" and (num_classes is not None or head is not None):
        raise ConfigError("task='backbone' has no head: drop num_classes and head")
    if task in HEADS and head not in HEADS[task]:
        known = ", ".join(["None", *head_names(task)])
        raise ConfigError(f"unknown head {head!r} for task {task!r}; choose {known}")


def create_model(
    arch: str | HRNetSpec,
    *,
    task: str | None = None,
    num_classes: int | None = None,
    head: str | None = None,
    align_corners: bool | None = None,
    checkpoint: str | os.PathLike | None = None,
    strict: bool = True,
    detector: str | None = None,
    weights: Any = None,
) -> nn.Module:
    """Build an HRNet for `task` from a registered name or a spec, optionally loading a checkpoint.

    task: "classification" | "pose" | "bottom_up_pose" (HigherHRNet) | "segmentation" | "detection"
    (torchvision Faster/Mask R-CNN on HRNetV2p, `detector="faster_rcnn"|"mask_rcnn"`) | "backbone"
    (the bare backbone, which returns the list of maps). `num_classes` is the keypoint count for
    pose; when None it comes from the checkpoint, else the task default (1000, 17, 19).
    `head="ocr"` selects HRNetV2 + OCR for segmentation. `align_corners` sets bilinear fusion
    (segmentation default: True with OCR, False without, as in the official configs). A
    checkpoint of any known layout (official, timm, mmpose, mmsegmentation, mmdetection, this
    library) is recognised; head sizes and what the layout implies (class count, widths, conv
    biases, `align_corners`) are read from it and stated in `model.load_report`.

    `weights` names published weights (`hrnet.list_weights()`: "ARCH.TAG", the TAG of `arch`, or a
    `hrnet.Weights`), downloaded once into the cache and hash-checked (`hrnet.weights`); the task
    (default: classification), head, class count and align_corners follow from them, and
    `model.weights` keeps the entry (class names, input size, mean/std, pose decoding).
    """
    if weights is not None:
        from .weights.loading import create_from_weights  # lazily: the registry reads its data files

        return create_from_weights(arch, weights, task=task, num_classes=num_classes, head=head,
                                   align_corners=align_corners, checkpoint=checkpoint, strict=strict, detector=detector)
    task = task or "classification"
    spec = get_spec(arch)
    _check_arguments(task, head, num_classes, detector)
    loaded = read_checkpoint(checkpoint) if checkpoint is not None else None
    if task == "detection":
        from .detectors import build_detector

        return build_detector(spec, num_classes=num_classes or DEFAULT_CLASSES["detection"],
                              detector=detector or "faster_rcnn", checkpoint=loaded)
    if align_corners is None and loaded is not None:
        align_corners = loaded.layout.implies.get("align_corners")
    spec = _task_spec(spec, task, head, align_corners)
    backbone = HRNetBackbone(spec)
    model: nn.Module = backbone if task == "backbone" else _with_head(backbone, task, head, num_classes, loaded)
    init_weights(model)
    if loaded is not None:
        model.load_report = load_state_dict(model, loaded.state, source=loaded.source, strict=strict,
                                            layout=loaded.layout)
    return model


def _with_head(backbone: HRNetBackbone, task: str, head: str | None, num_classes: int | None,
               loaded: Checkpoint | None) -> HRNet:
    head_type = HEADS[task][head]
    options: dict[str, Any] = {}
    if loaded is not None:
        head_state = {k[len("head."):]: v for k, v in loaded.state.items() if k.startswith("head.")}
        options = head_type.options_from_state(head_state)
    options["num_classes"] = num_classes or options.get("num_classes") or DEFAULT_CLASSES[task]
    if task == "segmentation":
        options["align_corners"] = backbone.spec.align_corners
    return HRNet(backbone=backbone, head=head_type(in_channels=backbone.channels, **options), task=task)
