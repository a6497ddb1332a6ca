"""Parameter and multiply-add counts, in the convention of the official HRNet tables.

The official repositories count the multiply-adds of convolutions and linear layers only and
divide by 2^30 (their "GFLOPs"); both that number and the plain / 1e9 count are reported.
Counting runs on the meta device: no memory for activations, no arithmetic, any model size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# The input size each official task reports its complexity at (height, width).
OFFICIAL_INPUT = {"classification": (224, 224), "pose": (256, 192), "segmentation": (1024, 2048),
                  "bottom_up_pose": (512, 512), "detection": (800, 1333), "backbone": (224, 224)}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: tuple[int, int], *, batch: int = 1) -> int:
    """Multiply-adds of every Conv2d and Linear for one forward pass of a (batch, 3, H, W) input."""
    total = 0

    def conv_hook(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        kernel_macs = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        total += output.numel() * kernel_macs

    def transposed_hook(module: nn.ConvTranspose2d, inputs, _output: torch.Tensor) -> None:
        nonlocal total  # every input element meets out_channels / groups x kernel weights
        total += inputs[0].numel() * module.out_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]

    def linear_hook(module: nn.Linear, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * module.in_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.ConvTranspose2d):
            handles.append(module.register_forward_hook(transposed_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        model.eval()
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(batch, 3, *input_size, device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total


@dataclass(frozen=True)
class Complexity:
    name: str
    task: str
    input_size: tuple[int, int]
    params: int
    macs: int

    def __str__(self) -> str:
        h, w = self.input_size
        return "\n".join([
            f"{self.name}  task={self.task}  input={h}x{w}",
            f"parameters      {self.params / 1e6:.1f}M ({self.params:,})",
            f"multiply-adds   {self.macs / 2**30:.2f} G (official: conv+linear / 2^30)   "
            f"{self.macs / 1e9:.2f} G (/ 1e9)",
        ])


def describe(arch: str, *, task: str = "classification", input_size: tuple[int, int] | None = None,
             num_classes: int | None = None, head: str | None = None) -> Complexity:
    """Build `arch` for `task` on the meta device and count its parameters and multiply-adds."""
    from .models import create_model

    input_size = input_size or OFFICIAL_INPUT[task]
    with torch.device("meta"):
        model = create_model(arch, task=task, num_classes=num_classes, head=head)
        return Complexity(str(arch), task, tuple(input_size), count_parameters(model), count_macs(model, input_size))
