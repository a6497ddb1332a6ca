"""HigherHRNet head (Cheng et al., CVPR 2020): bottom-up pose from a feature pyramid of branch 0.

Official `lib/models/pose_higher_hrnet.py` (HRNet/HigherHRNet-Human-Pose-Estimation): a 1x1 (or 3x3)
conv predicts heatmaps and associative-embedding tags at 1/4 resolution; each deconv stage
concatenates the features with those predictions (CAT_OUTPUT), doubles the resolution with a
transposed conv + BN + ReLU, refines with NUM_BASIC_BLOCKS basic blocks and predicts again.
Module names (`final_layers`, `deconv_layers`) and nesting are the official ones.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..blocks import BN_MOMENTUM, BasicBlock
from ..errors import ConfigError

# Transposed-conv kernel -> (padding, output_padding): each exactly doubles H and W (official get_deconv_cfg).
DECONV_PADDING = {4: (1, 0), 3: (1, 1), 2: (0, 0)}


class HigherHRNetHead(nn.Module):
    """Branch 0 (N, C, H/4, W/4) -> list of 1 + len(deconv_channels) maps, output i at stride 4 / 2^i.

    Output i has `num_classes` heatmaps, followed by the tags when `with_ae_loss[i]` (one tag map
    per keypoint with `tag_per_joint`, else one). The official W32 / W48 COCO models:
    [(N, 34, H/4, W/4), (N, 17, H/2, W/2)]. `deconv_channels` defaults to C (the backbone width).
    """

    def __init__(self, *, in_channels: Sequence[int], num_classes: int, tag_per_joint: bool = True,
                 with_ae_loss: Sequence[bool] = (True, False), final_conv_kernel: int = 1,
                 deconv_channels: Sequence[int] | None = None, deconv_kernels: Sequence[int] = (4,),
                 num_basic_blocks: int = 4, cat_output: Sequence[bool] = (True,)):
        super().__init__()
        width = int(in_channels[0])
        deconv_channels = tuple(deconv_channels) if deconv_channels is not None else (width,) * len(deconv_kernels)
        _check_options(len(deconv_channels), tuple(with_ae_loss), tuple(deconv_kernels), tuple(cat_output),
                       final_conv_kernel, num_basic_blocks)
        self.num_classes = num_classes
        self.tag_per_joint = tag_per_joint
        self.with_ae_loss = tuple(bool(v) for v in with_ae_loss)
        self.cat_output = tuple(bool(v) for v in cat_output)
        self.tag_channels = num_classes if tag_per_joint else 1
        padding = 1 if final_conv_kernel == 3 else 0
        widths = (width, *deconv_channels)
        self.final_layers = nn.ModuleList(
            nn.Conv2d(c, self.out_channels(i), kernel_size=final_conv_kernel, padding=padding)
            for i, c in enumerate(widths))
        layers = []
        channels = width
        for i, (out, kernel) in enumerate(zip(deconv_channels, deconv_kernels)):
            channels += self.out_channels(i) if self.cat_output[i] else 0
            layers.append(_deconv_stage(channels, out, kernel, num_basic_blocks))
            channels = out
        self.deconv_layers = nn.ModuleList(layers)

    def out_channels(self, index: int) -> int:
        """Channels of output `index`: heatmaps, plus tags where that output has the AE loss."""
        return self.num_classes + (self.tag_channels if self.with_ae_loss[index] else 0)

    @property
    def num_outputs(self) -> int:
        return len(self.final_layers)

    @property
    def class_keys(self) -> tuple[str, ...]:
        """Layers whose shape depends on the keypoint count: every final conv, and each deconv that
        takes the previous predictions as input."""
        return ("final_layers.", *(f"deconv_layers.{i}.0.0." for i, cat in enumerate(self.cat_output) if cat))

    @classmethod
    def options_from_state(cls, state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        """The whole head architecture from its head-relative keys (empty without `final_layers`).

        The keypoint count K is the smallest final-layer output (an output without tags); when
        every output has tags, K is half of them (the official tag-per-joint models)."""
        finals = _indexed(state, "final_layers.{}.weight")
        if not finals:
            return {}
        counts = [w.shape[0] for w in finals]
        k = min(counts) if len(set(counts)) > 1 else counts[0] // 2
        tag = max(counts) - k if len(set(counts)) > 1 else k
        deconvs = _indexed(state, "deconv_layers.{}.0.0.weight")
        previous = [finals[0].shape[1], *(w.shape[1] for w in deconvs)]
        blocks = len({key.split(".")[2] for key in state if key.startswith("deconv_layers.0.")}) - 1
        return {"num_classes": k, "tag_per_joint": tag == k, "with_ae_loss": tuple(c > k for c in counts),
                "final_conv_kernel": finals[0].shape[-1], "deconv_channels": tuple(w.shape[1] for w in deconvs),
                "deconv_kernels": tuple(w.shape[-1] for w in deconvs), "num_basic_blocks": max(blocks, 0),
                "cat_output": tuple(w.shape[0] > previous[i] for i, w in enumerate(deconvs))}

    def init_weights(self) -> None:
        # Official `init_weights`: every conv and transposed conv of the head ~ N(0, 0.001), biases 0.
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(module.weight, std=0.001)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        x = features[0]
        y = self.final_layers[0](x)
        outputs = [y]
        for i, deconv in enumerate(self.deconv_layers):
            if self.cat_output[i]:
                x = torch.cat((x, y), dim=1)  # features first, then the predictions (official order)
            x = deconv(x)
            y = self.final_layers[i + 1](x)
            outputs.append(y)
        return outputs


def _deconv_stage(in_channels: int, channels: int, kernel: int, num_basic_blocks: int) -> nn.Sequential:
    padding, output_padding = DECONV_PADDING[kernel]
    up = nn.Sequential(
        nn.ConvTranspose2d(in_channels, channels, kernel, stride=2, padding=padding, output_padding=output_padding,
                           bias=False),
        nn.BatchNorm2d(channels, momentum=BN_MOMENTUM),
        nn.ReLU(inplace=True))
    # Each basic block sits in a one-element Sequential: official key `deconv_layers.i.{1..n}.0.conv1`.
    return nn.Sequential(up, *(nn.Sequential(BasicBlock(channels, channels)) for _ in range(num_basic_blocks)))


def _indexed(state: Mapping[str, torch.Tensor], pattern: str) -> list[torch.Tensor]:
    out = []
    while pattern.format(len(out)) in state:
        out.append(state[pattern.format(len(out))])
    return out


def _check_options(deconvs: int, with_ae_loss: tuple, kernels: tuple, cat_output: tuple, final_conv_kernel: int,
                   num_basic_blocks: int) -> None:
    if len(with_ae_loss) != deconvs + 1:
        raise ConfigError(f"with_ae_loss needs one entry per output ({deconvs + 1}: one plus the deconv count), "
                          f"got {list(with_ae_loss)}")
    if len(kernels) != deconvs or len(cat_output) != deconvs:
        raise ConfigError(f"deconv_kernels {list(kernels)} and cat_output {list(cat_output)} need one entry per "
                          f"deconv ({deconvs})")
    if any(k not in DECONV_PADDING for k in kernels):
        raise ConfigError(f"deconv kernels must be in {sorted(DECONV_PADDING)}, got {list(kernels)}")
    if final_conv_kernel not in (1, 3):
        raise ConfigError(f"final_conv_kernel must be 1 or 3, got {final_conv_kernel}")
    if num_basic_blocks < 0:
        raise ConfigError(f"num_basic_blocks must be >= 0, got {num_basic_blocks}")


def options_from_official(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """HigherHRNetHead options from an official experiment yaml (the whole config, as loaded by yaml).

    Reads MODEL.NUM_JOINTS, MODEL.TAG_PER_JOINT, LOSS.WITH_AE_LOSS and MODEL.EXTRA's
    FINAL_CONV_KERNEL and DECONV (NUM_DECONVS, NUM_CHANNELS, KERNEL_SIZE, NUM_BASIC_BLOCKS,
    CAT_OUTPUT). The backbone is `HRNetSpec.from_official(cfg["MODEL"]["EXTRA"])`; together:
    `HigherHRNetHead(in_channels=spec.channels, **options_from_official(cfg))`.
    """
    try:
        model, extra = cfg["MODEL"], cfg["MODEL"]["EXTRA"]
        deconv = extra["DECONV"]
        count = int(deconv["NUM_DECONVS"])
        options = {
            "num_classes": int(model["NUM_JOINTS"]), "tag_per_joint": bool(model.get("TAG_PER_JOINT", True)),
            "with_ae_loss": tuple(bool(v) for v in cfg["LOSS"]["WITH_AE_LOSS"])[:count + 1],
            "final_conv_kernel": int(extra["FINAL_CONV_KERNEL"]),
            "deconv_channels": tuple(int(c) for c in deconv["NUM_CHANNELS"])[:count],
            "deconv_kernels": tuple(int(k) for k in deconv["KERNEL_SIZE"])[:count],
            "num_basic_blocks": int(deconv["NUM_BASIC_BLOCKS"]),
            "cat_output": tuple(bool(v) for v in deconv["CAT_OUTPUT"])[:count],
        }
    except (KeyError, TypeError) as missing:
        raise ConfigError(f"official HigherHRNet config lacks the field {missing} (needs MODEL.NUM_JOINTS, "
                          "MODEL.EXTRA.FINAL_CONV_KERNEL, MODEL.EXTRA.DECONV.*, LOSS.WITH_AE_LOSS)") from None
    return options
