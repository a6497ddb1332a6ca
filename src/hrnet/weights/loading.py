"""`create_model(arch, weights=...)`: a registry entry's file, downloaded and cached, loaded into the
model the entry describes.

What follows from the entry unless the caller says otherwise: the task, the head (the detector for
detection), the class count and `align_corners`. What must agree: the architecture, and the task and
head when the caller names them, except that ImageNet classification weights may initialise the
backbone of any task (the classifier is dropped, as `model.pretrained` does). A different class
count re-initialises the class layer (fine-tuning), reported in `model.load_report`.
"""

from __future__ import annotations

import dataclasses
import logging
import os

from torch import nn

from ..checkpoints import Checkpoint, read_checkpoint
from ..errors import CheckpointError
from ..spec import HRNetSpec, get_spec
from .entry import Weights
from .registry import resolve

log = logging.getLogger("hrnet")
# Tasks whose backbone an ImageNet classifier may initialise (its head is dropped).
BACKBONE_TASKS = ("pose", "bottom_up_pose", "segmentation", "detection", "backbone")


def create_from_weights(arch: str | HRNetSpec, weights: "str | Weights", *, task: str | None = None,
                        num_classes: int | None = None, head: str | None = None, align_corners: bool | None = None,
                        checkpoint: str | os.PathLike | None = None, strict: bool = True,
                        detector: str | None = None) -> nn.Module:
    """The model of `weights` (a registry name, a bare tag of `arch`, or a Weights entry) with its
    file loaded; `model.weights` is the entry. See `hrnet.create_model`."""
    from ..models import create_model

    entry = resolve(weights, arch)
    if checkpoint is not None:
        raise CheckpointError(f"pass weights={entry.name!r} or checkpoint={str(checkpoint)!r}, not both")
    spec = _check_arch(entry, arch)
    task = _check_task(entry, task)
    same_task = task == entry.task
    if same_task:
        _check_head(entry, detector if task == "detection" else head)
    if not entry.available:
        raise CheckpointError(f"weights {entry.name} need {entry.pending or 'parts this version lacks'}, which this "
                              "version of hrnet does not have yet")
    loaded = _read(entry)
    if same_task:  # the entry's own model: its head, classes (unless fine-tuning on others), fusion
        head = detector = entry.head
        num_classes = num_classes or entry.num_classes
        if task == "segmentation" and align_corners is None:
            align_corners = entry.align_corners
    if task == "detection":
        model = create_model(spec, task=task, num_classes=num_classes, detector=detector, checkpoint=loaded)
    else:
        model = create_model(spec, task=task, num_classes=num_classes, head=head, align_corners=align_corners,
                             checkpoint=loaded, strict=strict)
    model.weights = entry
    _note_differences(model, entry, loaded, align_corners if same_task and task == "segmentation" else None)
    return model


def _check_head(entry: Weights, chosen: str | None) -> None:
    if chosen is not None and chosen != entry.head:
        what = "detector" if entry.task == "detection" else "head"
        raise CheckpointError(f"weights {entry.name} are for the {entry.task} {what} {_show(entry.head)}, not "
                              f"{_show(chosen)}: drop {what}= or choose weights of that {what} "
                              f"(hrnet weights list --task {entry.task})")


def _show(head: str | None) -> str:
    return "default (None)" if head is None else repr(head)


def _check_arch(entry: Weights, arch: str | HRNetSpec) -> HRNetSpec:
    spec = get_spec(arch)
    if isinstance(arch, str) and arch != entry.arch:
        raise CheckpointError(f"weights {entry.name} are for architecture {entry.arch}, not {arch}: use "
                              f"create_model({entry.arch!r}, weights={entry.name!r})")
    if not isinstance(arch, str) and entry.available and get_spec(entry.arch) != spec:
        raise CheckpointError(f"weights {entry.name} are for architecture {entry.arch}, and the given spec differs "
                              "from it (stages or stem replaced?): build the model from the name "
                              f"{entry.arch!r}")
    return spec


def _check_task(entry: Weights, task: str | None) -> str:
    if task is None or task == entry.task:
        return entry.task
    if entry.task == "classification" and task in BACKBONE_TASKS:
        return task  # an ImageNet backbone initialising another task; the classifier is dropped
    raise CheckpointError(f"weights {entry.name} are for task {entry.task!r}, not {task!r}: drop task= (the "
                          f"weights' task is used) or choose {task} weights (hrnet weights list --task {task}); "
                          "only ImageNet classifiers initialise other tasks' backbones")


def _read(entry: Weights) -> Checkpoint:
    """The entry's file (downloaded on first use) under this library's keys, with what the entry
    adds to its layout (a file without conv biases where the model has them)."""
    path = entry.get_path()
    loaded = read_checkpoint(path)
    layout = loaded.layout
    if not entry.conv_bias and layout.implies.get("conv_bias", True):
        layout = dataclasses.replace(layout, implies={**layout.implies, "conv_bias": False})
    return Checkpoint(state=loaded.state, layout=layout, source=f"{entry.name} ({path})")


def _note_differences(model: nn.Module, entry: Weights, loaded: Checkpoint, align_corners: bool | None) -> None:
    """Report lines for what differs from the registry: another recognised layout (the catch-all
    official one also reads files that were saved without a publisher's extras), another
    align_corners than the publisher's."""
    report = getattr(model, "load_report", None)
    if report is None:
        return
    notes = []
    if loaded.layout.name not in (entry.layout, "official"):
        notes.append(f"the file was recognised as layout {loaded.layout.name!r}; the registry lists "
                     f"{entry.layout!r}")
    if align_corners is not None and align_corners != entry.align_corners:
        notes.append(f"built with align_corners={align_corners}; {entry.name} was trained with "
                     f"{entry.align_corners}, so outputs differ from the publisher's")
    for note in notes:
        log.warning("%s: %s", entry.name, note)
    report.notes.extend(notes)
