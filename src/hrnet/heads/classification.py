"""The ImageNet classification head of HRNet (official `cls_hrnet.py` names)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..blocks import BN_MOMENTUM, make_layer

# Widths of the bottleneck applied to each branch before the features are merged (official values).
HEAD_CHANNELS = (32, 64, 128, 256)


class ClassificationHead(nn.Module):
    """Four branches -> (N, num_classes) logits.

    Each branch goes through one bottleneck (to 128/256/512/1024 channels); the high-resolution
    result is repeatedly downsampled by strided 3x3 convs and added to the next branch, then a 1x1
    conv lifts it to 2048 channels, which are average-pooled and fed to a linear classifier.
    """

    class_keys = ("classifier.",)

    def __init__(self, *, in_channels: Sequence[int], num_classes: int, feature_dim: int = 2048):
        super().__init__()
        if len(in_channels) != len(HEAD_CHANNELS):
            raise ValueError(f"ClassificationHead needs {len(HEAD_CHANNELS)} branches, got {len(in_channels)}")
        widths = [c * 4 for c in HEAD_CHANNELS]
        self.incre_modules = nn.ModuleList(
            make_layer("bottleneck", c_in, c, 1) for c_in, c in zip(in_channels, HEAD_CHANNELS)
        )
        # These convs carry a bias in the official checkpoints.
        self.downsamp_modules = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1),
                nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM),
                nn.ReLU(inplace=True),
            )
            for c_in, c_out in zip(widths[:-1], widths[1:])
        )
        self.final_layer = nn.Sequential(
            nn.Conv2d(widths[-1], feature_dim, kernel_size=1),
            nn.BatchNorm2d(feature_dim, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(feature_dim, num_classes)

    @classmethod
    def options_from_state(cls, state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        """Sizes a checkpoint fixes (keys relative to the head): the class count."""
        weight = state.get("classifier.weight")
        return {} if weight is None else {"num_classes": weight.shape[0]}

    def init_weights(self) -> None:
        """The backbone's initialisation (kaiming convs, unit BatchNorm) covers the head; the linear
        classifier keeps PyTorch's default, as the official `cls_hrnet.py`."""

    def forward_features(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Branch maps -> pooled (N, 2048) embedding."""
        y = self.incre_modules[0](features[0])
        for incre, down, x in zip(self.incre_modules[1:], self.downsamp_modules, features[1:]):
            y = incre(x) + down(y)
        y = self.final_layer(y)
        return y.flatten(2).mean(dim=2)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.forward_features(features))
