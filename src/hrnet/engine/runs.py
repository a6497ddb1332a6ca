"""Run checkpoints: what the engine writes (`last.pth`, `best.pth`) and how inference gets a model back.

A run checkpoint is a dict with `format` CHECKPOINT_FORMAT, the weights (`model`), the training state
(optimizer, schedule, scaler, RNG, meters, step and epoch), the architecture (`spec`) and the resolved
recipe (`config`), so `hrnet eval` / `hrnet predict` need nothing else. Official, timm, mmpose, ...
weights need a recipe to say which task and model they are for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoints import _torch_load
from ..errors import CheckpointError, ConfigError
from .config import RunConfig, config_from_dict, load_config

CHECKPOINT_FORMAT = "hrnet-run/1"


def is_run_checkpoint(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT


def load_run_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint written by the engine (weights plus training state, config and spec)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    state = _torch_load(path)
    if not is_run_checkpoint(state):
        raise CheckpointError(f"{path} is not a training checkpoint of hrnet (no format {CHECKPOINT_FORMAT!r}); "
                              "for official weights use model.pretrained")
    return state


def config_from_checkpoint(state: dict[str, Any], overrides: list[str] | tuple[str, ...] = (),
                           source: str = "checkpoint") -> RunConfig:
    if "config" not in state:
        raise ConfigError(f"{source} holds no recipe: pass --config")
    return config_from_dict(state["config"], source, overrides)


def _read_if_run(path: Path) -> dict[str, Any] | None:
    """The run checkpoint at `path`, or None for plain weights (official, timm, safetensors, ...)."""
    if path.suffix == ".safetensors":
        return None
    state = _torch_load(path)
    return state if is_run_checkpoint(state) else None


def load_for_inference(checkpoint: str | os.PathLike, config_path: str | os.PathLike | None,
                       overrides: list[str] | tuple[str, ...], device: torch.device | str):
    """(config, task, model on `device` in eval mode) from a run checkpoint (its recipe, unless
    `config_path` replaces it), or from weights of any known layout plus a recipe."""
    from ..tasks import get_task

    path = Path(checkpoint)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    state = _read_if_run(path)
    if state is not None:
        config = load_config(config_path, overrides) if config_path else config_from_checkpoint(state, overrides,
                                                                                                str(path))
        config.model.pretrained = None  # the run's own weights replace what it started from
        if getattr(config.model, "weights", None) is not None:
            config.model.weights = None
        task = get_task(config.task)(config)
        model = task.build_model()
        _load_run_weights(model, state["model"], str(path))
    else:
        if not config_path:
            raise ConfigError(f"{path} holds weights only (not an hrnet training checkpoint of format "
                              f"{CHECKPOINT_FORMAT}): pass --config RECIPE to say which task and model they are for")
        config = load_config(config_path, overrides)
        config.model.pretrained = str(path)
        task = get_task(config.task)(config)
        model = task.build_model()
    model.to(device).eval()
    return config, task, model


def _load_run_weights(model: nn.Module, weights: dict[str, torch.Tensor], source: str) -> None:
    """A run's own weights go through the same checks as any checkpoint, so another architecture is
    explained ("the checkpoint is an HRNet-W32 ...") instead of a raw state-dict error."""
    from ..checkpoints import load_state_dict
    from ..layouts.official import canonical_key

    load_state_dict(model, {canonical_key(k): v for k, v in weights.items()}, source=source)
