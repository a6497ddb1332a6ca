"""HRNetV2 segmentation heads: the plain V2 head and OCR (official `seg_hrnet.py`, `seg_hrnet_ocr.py`)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks import BN_MOMENTUM


def concat_branches(features: list[torch.Tensor], align_corners: bool) -> torch.Tensor:
    """HRNetV2 representation: every branch upsampled (bilinear) to branch 0 and concatenated.

    (N, C_i, H_i, W_i) for i = 0..3 -> (N, sum C_i, H_0, W_0).
    """
    size = features[0].shape[-2:]
    ups = [F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners) for x in features[1:]]
    return torch.cat([features[0], *ups], dim=1)


def bn_relu(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(channels, momentum=BN_MOMENTUM), nn.ReLU(inplace=True))


def conv_bn_relu_classifier(in_channels: int, num_classes: int, kernel: int, *, bias: bool = True) -> nn.Sequential:
    """1x1 conv-BN-ReLU then the classifier conv (official `last_layer` and `aux_head`; their first
    conv has a bias, mmsegmentation's `ConvModule` has none: `bias=False`)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, kernel_size=1, bias=bias),
        nn.BatchNorm2d(in_channels, momentum=BN_MOMENTUM),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, num_classes, kernel_size=kernel, padding=kernel // 2),
    )


def _init_classifier(conv: nn.Conv2d) -> None:
    # Dense-prediction classifiers start near zero, as in the official segmentation code.
    nn.init.normal_(conv.weight, std=0.001)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


class SegmentationHead(nn.Module):
    """HRNetV2: branches -> (N, num_classes, H/4, W/4) logits at the stride of branch 0.

    `conv_bias=False` drops the bias of the 1x1 conv before the BatchNorm, as mmsegmentation's
    FCN head (its only difference from the official head)."""

    class_keys = ("last_layer.3.",)

    def __init__(
        self, *, in_channels: Sequence[int], num_classes: int, align_corners: bool, final_conv_kernel: int = 1,
        conv_bias: bool = True,
    ):
        super().__init__()
        self.align_corners = align_corners
        self.last_layer = conv_bn_relu_classifier(sum(in_channels), num_classes, final_conv_kernel, bias=conv_bias)

    @classmethod
    def options_from_state(cls, state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        """Sizes a checkpoint fixes (keys relative to the head): classes, kernel, the conv bias."""
        weight = state.get("last_layer.3.weight")
        if weight is None:
            return {}
        return {"num_classes": weight.shape[0], "final_conv_kernel": weight.shape[-1],
                "conv_bias": "last_layer.0.bias" in state}

    def init_weights(self) -> None:
        _init_classifier(self.last_layer[3])

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.last_layer(concat_branches(features, self.align_corners))


class SpatialGather(nn.Module):
    """Object regions: class-probability-weighted average of pixel features.

    feats (N, C, H, W), logits (N, K, H, W) -> region features (N, C, K, 1).
    """

    def forward(self, feats: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        probs = F.softmax(logits.flatten(2), dim=2)  # (N, K, HW), softmax over pixels
        context = torch.matmul(probs, feats.flatten(2).transpose(1, 2))  # (N, K, C)
        return context.permute(0, 2, 1).unsqueeze(3)


class ObjectAttention(nn.Module):
    """Pixel-region attention: each pixel attends over the K object regions.

    x (N, C, H, W), regions (N, C, K, 1) -> context (N, C, H, W).
    """

    def __init__(self, *, in_channels: int, key_channels: int, scale: int, align_corners: bool):
        super().__init__()
        self.key_channels = key_channels
        self.scale = scale
        self.align_corners = align_corners
        self.pool = nn.MaxPool2d(kernel_size=(scale, scale))

        def project(c_in: int, c_out: int, depth: int) -> nn.Sequential:
            layers: list[nn.Module] = []
            for index in range(depth):
                layers += [nn.Conv2d(c_in if index == 0 else c_out, c_out, kernel_size=1, bias=False), bn_relu(c_out)]
            return nn.Sequential(*layers)

        self.f_pixel = project(in_channels, key_channels, 2)
        self.f_object = project(in_channels, key_channels, 2)
        self.f_down = project(in_channels, key_channels, 1)
        self.f_up = project(key_channels, in_channels, 1)

    def forward(self, x: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        if self.scale > 1:
            x = self.pool(x)
        query = self.f_pixel(x).flatten(2).transpose(1, 2)  # (N, HW, Ck)
        key = self.f_object(regions).flatten(2)  # (N, Ck, K)
        value = self.f_down(regions).flatten(2).transpose(1, 2)  # (N, K, Ck)
        sim = F.softmax(torch.matmul(query, key) * self.key_channels**-0.5, dim=-1)
        context = torch.matmul(sim, value).transpose(1, 2).reshape(n, self.key_channels, *x.shape[2:])
        context = self.f_up(context)
        if self.scale > 1:
            context = F.interpolate(context, size=(h, w), mode="bilinear", align_corners=self.align_corners)
        return context


class SpatialOCR(nn.Module):
    """Object-contextual representation: [context, pixel features] -> 1x1 conv-BN-ReLU-dropout."""

    def __init__(
        self, *, in_channels: int, key_channels: int, out_channels: int, scale: int, dropout: float, align_corners: bool
    ):
        super().__init__()
        self.object_context_block = ObjectAttention(
            in_channels=in_channels, key_channels=key_channels, scale=scale, align_corners=align_corners
        )
        self.conv_bn_dropout = nn.Sequential(
            nn.Conv2d(2 * in_channels, out_channels, kernel_size=1, bias=False),
            bn_relu(out_channels),
            nn.Dropout2d(dropout),
        )

    def forward(self, feats: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        context = self.object_context_block(feats, regions)
        return self.conv_bn_dropout(torch.cat([context, feats], dim=1))


class OCRHead(nn.Module):
    """HRNetV2 + OCR (Yuan et al., ECCV 2020): branches -> (aux, main) logits, each (N, K, H/4, W/4).

    The auxiliary head's soft regions drive the object-contextual attention of the main head.
    `conv_bias=False` drops the biases of `conv3x3_ocr.0` and `aux_head.0` (each followed by a
    BatchNorm), as mmsegmentation's OCRNet.
    """

    class_keys = ("cls_head.", "aux_head.3.")

    def __init__(
        self,
        *,
        in_channels: Sequence[int],
        num_classes: int,
        align_corners: bool,
        mid_channels: int = 512,
        key_channels: int = 256,
        dropout: float = 0.05,
        scale: int = 1,
        conv_bias: bool = True,
    ):
        super().__init__()
        total = sum(in_channels)
        self.align_corners = align_corners
        # Registration order follows the official model so state-dict key order matches.
        self.conv3x3_ocr = nn.Sequential(
            nn.Conv2d(total, mid_channels, kernel_size=3, padding=1, bias=conv_bias),
            nn.BatchNorm2d(mid_channels, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
        )
        self.ocr_gather_head = SpatialGather()
        self.ocr_distri_head = SpatialOCR(
            in_channels=mid_channels,
            key_channels=key_channels,
            out_channels=mid_channels,
            scale=scale,
            dropout=dropout,
            align_corners=align_corners,
        )
        self.cls_head = nn.Conv2d(mid_channels, num_classes, kernel_size=1)
        self.aux_head = conv_bn_relu_classifier(total, num_classes, 1, bias=conv_bias)

    @classmethod
    def options_from_state(cls, state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        """Sizes a checkpoint fixes (keys relative to the head): classes, OCR widths, conv biases."""
        weight = state.get("cls_head.weight")
        if weight is None:
            return {}
        options: dict[str, Any] = {"num_classes": weight.shape[0], "conv_bias": "conv3x3_ocr.0.bias" in state}
        if "conv3x3_ocr.0.weight" in state:
            options["mid_channels"] = state["conv3x3_ocr.0.weight"].shape[0]
        key = state.get("ocr_distri_head.object_context_block.f_pixel.0.weight")
        if key is not None:
            options["key_channels"] = key.shape[0]
        return options

    def init_weights(self) -> None:
        _init_classifier(self.cls_head)
        _init_classifier(self.aux_head[3])

    def forward(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        feats = concat_branches(features, self.align_corners)
        aux = self.aux_head(feats)
        feats = self.conv3x3_ocr(feats)
        regions = self.ocr_gather_head(feats, aux)
        main = self.cls_head(self.ocr_distri_head(feats, regions))
        return aux, main
