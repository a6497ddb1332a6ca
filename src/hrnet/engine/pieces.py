"""Small pieces of a training run: autocast, seeding, RNG states (saved in checkpoints), the model
inside a DDP wrapper, its HRNet spec as plain data, activation checkpointing."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
from typing import Any

import numpy as np
import torch
from torch import nn


def autocast(device: torch.device, amp: str, enabled: bool = True):
    """The autocast context of `train.amp` ("none", "bf16" or "fp16")."""
    if amp == "none" or not enabled:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


def rng_state() -> dict[str, Any]:
    """RNG states of python, numpy and torch (CPU and CUDA), as plain data and tensors."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def model_spec(model: nn.Module) -> dict[str, Any] | None:
    """The HRNet spec inside `model` as plain data (None when it holds no HRNet backbone)."""
    from ..backbone import HRNetBackbone

    for module in model.modules():
        if isinstance(module, HRNetBackbone):
            return json.loads(json.dumps(dataclasses.asdict(module.spec)))
    return None


def enable_grad_checkpointing(model: nn.Module) -> int:
    """Recompute every stage of every HRNet backbone in `model` during backward; returns how many."""
    from ..backbone import HRNetBackbone

    count = 0
    for module in model.modules():
        if isinstance(module, HRNetBackbone):
            module.grad_checkpointing = True
            count += 1
    return count


def to_channels_last(batch: Any) -> Any:
    """`batch` with every 4-D floating tensor (N, C, H, W) in channels-last memory order, found
    through dicts, lists and tuples; everything else as it is. The values do not change, only
    the strides: oneDNN's convolutions run faster on NHWC on CPU (see BENCHMARKS.md)."""
    if isinstance(batch, torch.Tensor):
        if batch.dim() == 4 and batch.is_floating_point():
            return batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, dict):
        return {key: to_channels_last(value) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)) and not hasattr(batch, "_fields"):
        return type(batch)(to_channels_last(value) for value in batch)
    return batch


def contiguous_state(state: dict[str, Any]) -> dict[str, Any]:
    """A state dict with every tensor in the default (NCHW) memory order, as other tools expect
    of saved weights (safetensors refuses strided tensors)."""
    return {key: value.contiguous() if isinstance(value, torch.Tensor) else value for key, value in state.items()}
