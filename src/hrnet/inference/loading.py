"""Where a Predictor's model comes from: a run checkpoint, a weights name, weights + a recipe, or a module.

Every path ends in the same three things the inference needs: the resolved recipe (`RunConfig`),
the task built from it (class names, keypoint metadata, test settings) and the model in eval mode
on its device.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..engine.config import RunConfig, config_from_dict, load_config
from ..engine.distributed import resolve_device
from ..errors import CheckpointError, ConfigError


@dataclass
class Loaded:
    config: RunConfig
    task: Any
    model: nn.Module
    device: torch.device
    name: str  # how the model is described in results' `how`
    cache: Path | None = None  # where exports of this model are cached (next to its weights)
    source_hash: str | None = None  # identifies the weights, for stale-export detection


def _file_hash(path: Path) -> str:
    """A quick identity of a weights file: sha256 of its size, mtime and first and last MiB."""
    digest = hashlib.sha256(f"{path.stat().st_size}:{path.stat().st_mtime_ns}".encode())
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
        handle.seek(max(0, path.stat().st_size - (1 << 20)))
        digest.update(handle.read())
    return digest.hexdigest()


def _recipe(config: str | os.PathLike | dict | None, overrides: list[str]) -> RunConfig | None:
    if config is None:
        return None
    if isinstance(config, dict):
        return config_from_dict(config, "recipe", overrides)
    return load_config(config, overrides)


def _default_recipe(task: str | None, arch: str | None, what: str) -> dict[str, Any]:
    if task is None:
        raise ConfigError(f"{what}: give its recipe (--config RECIPE; config= in Python), or arch= and task= in "
                          "Python")
    return {"task": task, "model": {"arch": arch or "hrnet_w18"}}


def load_model(source: Any, *, task: str | None, arch: str | None, config: str | os.PathLike | dict | None,
               overrides: list[str], device: str | torch.device) -> Loaded:
    """The model, its task and recipe for `hrnet.Predictor` (see its docstring for `source`)."""
    device = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    if isinstance(source, nn.Module):
        recipe = _recipe(config, overrides) or config_from_dict(_default_recipe(task, arch, "a module"), "recipe",
                                                               overrides)
        task_obj = _task(recipe)
        return Loaded(recipe, task_obj, source.to(device).eval(), device, name=f"module {type(source).__name__}")
    from ..weights import Weights

    if isinstance(source, Weights):
        return _from_weights(source, config=config, overrides=overrides, device=device)
    text = str(source)
    if text.startswith(("http://", "https://")):
        from ..checkpoints import resolve_checkpoint

        source = resolve_checkpoint(text)
    path = Path(source)
    if path.is_file():
        return _from_file(path, task=task, arch=arch, config=config, overrides=overrides, device=device)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give its checkpoint file (e.g. {path}/best.pth)")
    return _from_weights_name(text, config=config, overrides=overrides, device=device)


def _task(config: RunConfig) -> Any:
    from ..tasks import get_task

    return get_task(config.task)(config)


def _from_file(path: Path, *, task: str | None, arch: str | None, config: str | os.PathLike | dict | None,
               overrides: list[str], device: torch.device) -> Loaded:
    from ..engine.runs import _read_if_run, load_for_inference

    cache, digest = path.parent / ".hrnet-exports", _file_hash(path)
    is_run = _read_if_run(path) is not None
    if is_run or isinstance(config, (str, os.PathLike)):
        if isinstance(config, dict):
            raise ConfigError(f"{path} is a training run: replace its recipe with a recipe file, not a dict")
        recipe, task_obj, model = load_for_inference(path, config, overrides, device)
        if task is not None and recipe.task != task:
            raise ConfigError(f"{path} is a {recipe.task} model, not {task}")
        return Loaded(recipe, task_obj, model, device, name=str(path), cache=cache, source_hash=digest)
    raw = config if isinstance(config, dict) else _default_recipe(task, arch, f"{path} holds weights only")
    raw = {**raw, "model": {**raw.get("model", {}), "pretrained": str(path)}}
    recipe = config_from_dict(raw, "recipe", overrides)
    task_obj = _task(recipe)
    model = task_obj.build_model().to(device).eval()
    return Loaded(recipe, task_obj, model, device, name=str(path), cache=cache, source_hash=digest)


def recipe_for(weights: Any) -> dict[str, Any]:
    """The recipe of a registered weights entry: its model, and the data settings that make its
    outputs the publisher's (class names, keypoints, input size, mean/std, pose decoding)."""
    from ..weights import class_names

    model: dict[str, Any] = {"arch": weights.arch, "weights": weights.name}
    if weights.head is not None:
        model["head"] = weights.head
    height, width = weights.input_size or (None, None)
    data: dict[str, Any] = {}
    if weights.task == "classification":
        size = height or 224
        data = {"classes": class_names(weights), "image_size": size, "mean": list(weights.mean),
                "std": list(weights.std), "resize_size": int(size / (weights.crop_pct or 0.875) + 0.5)}
    elif weights.task in ("pose", "bottom_up_pose"):
        if weights.keypoints is None:
            raise ConfigError(f"weights {weights.name} predict {weights.num_classes} keypoints that have no built-in "
                              "metadata: give config=RECIPE with data.keypoints=METADATA.yaml (names, flip pairs, "
                              "skeleton, OKS sigmas)")
        data = {"keypoints": weights.keypoints}
        if weights.task == "pose":
            data.update(input_size=[height or 256, width or 192], decoding=weights.decoding or "quarter",
                        dark_kernel=weights.dark_kernel or 11, shift_heatmap=weights.flip_shift)
    elif weights.task == "segmentation":
        data = {"classes": weights.classes, "mean": list(weights.mean), "std": list(weights.std)}
        if height:
            data["crop_size"] = [height, width]
    elif weights.task == "detection":
        data = {"class_names": class_names(weights)[1:], "category_ids": _coco_category_ids()}
    return {"task": weights.task, "model": model, "data": data}


def _coco_category_ids() -> list[int]:
    """COCO's category ids of the 80 detection classes, in label order (torchvision's 91-entry list
    holds 'N/A' at the unused ids)."""
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

    names = FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]
    return [i for i, name in enumerate(names) if name not in ("N/A", "__background__")]


def _from_weights_name(name: str, *, config: str | os.PathLike | dict | None, overrides: list[str],
                       device: torch.device) -> Loaded:
    from ..weights import get_weights

    if os.sep in name or Path(name).suffix in (".pth", ".pt", ".bin", ".safetensors", ".ckpt"):
        raise CheckpointError(f"checkpoint {name} does not exist")
    if "." not in name:
        raise CheckpointError(f"{name} is neither a file nor a registered weights name (ARCH.TAG, see "
                              "`hrnet weights list`)")
    return _from_weights(get_weights(name), config=config, overrides=overrides, device=device)


def _from_weights(weights: Any, *, config: str | os.PathLike | dict | None, overrides: list[str],
                  device: torch.device) -> Loaded:
    raw = recipe_for(weights)
    if isinstance(config, dict):
        raw = {**raw, **config}
    recipe = load_config(config, overrides) if isinstance(config, (str, os.PathLike)) else \
        config_from_dict(raw, f"weights {weights.name}", overrides)
    recipe.model.weights = weights  # the entry itself: it may not be registered under its name
    task_obj = _task(recipe)
    model = task_obj.build_model().to(device).eval()
    path = weights.get_path()
    return Loaded(recipe, task_obj, model, device, name=weights.name, cache=path.parent / "exports",
                  source_hash=weights.sha256 or weights.hash_prefix or _file_hash(path))


# ----------------------------------------------------------------------------- person detectors


def resolve_detector(detector: Any, *, device: torch.device) -> tuple[Callable[[np.ndarray, str], np.ndarray], str]:
    """A pose Predictor's box source and its description, from a detection checkpoint or weights name,
    a torchvision detection model, or a function rgb -> (N, 4|5) x1, y1, x2, y2[, score]."""
    from ..tasks.pose.predict import detector_boxes

    if isinstance(detector, (str, os.PathLike)):
        from .predictor import Predictor

        boxes = Predictor(detector, device=device, score_threshold=0.0)
        if boxes.task.name != "detection":
            raise ConfigError(f"detector {detector} is a {boxes.task.name} model; a person detector is a detection one")
        person = boxes.task.person_detector(boxes.model, score_threshold=0.0)
        return detector_boxes(person), f"detector {detector}"
    if isinstance(detector, nn.Module):
        from ..tasks.detection.predict import person_boxes

        model = detector.to(device).eval()
        return detector_boxes(lambda image: person_boxes(model, image, person_label=1, score_threshold=0.0)), \
            f"detector {type(detector).__name__} (COCO label 1 = person)"
    if callable(detector):
        return detector_boxes(detector), f"detector {getattr(detector, '__name__', type(detector).__name__)}"
    raise ConfigError(f"detector: give a detection checkpoint or weights name, a torchvision detection model or a "
                      f"function rgb -> boxes, not a {type(detector).__name__}")
