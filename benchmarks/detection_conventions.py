"""How far the torchvision detector's box conventions are from HRNet-Object-Detection's (mmdetection v1)
and mmdetection 2.x's, when the same weights are loaded (hrnet.layouts.mmdet): anchors, box decoding
and RoIAlign, measured on a COCO-sized input.

    python benchmarks/detection_conventions.py

The conventions come from the publishers' code (see hrnet/layouts/mmdet.py): mmdetection v1 centres base
anchors at 0.5 (stride - 1), uses +1 pixel widths when decoding and a RoIAlign whose box ends at
(x2 + 1) * scale; mmdetection 2.x centres anchors at 0 without rounding and decodes without +1;
torchvision rounds anchors centred at 0 and decodes without +1. Everything else (weights, features,
head outputs) is identical; tests/layouts/test_mmdet.py proves that part exactly.
"""

from __future__ import annotations

import argparse
import math

import torch
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import roi_align

STRIDES = (4, 8, 16, 32, 64)
RATIOS = (0.5, 1.0, 2.0)


def base_anchors(stride: int, convention: str) -> torch.Tensor:
    """(3, 4) anchors of one level (scale 8 x stride) before shifting, in x1, y1, x2, y2."""
    size = 8 * stride
    h_ratios = torch.sqrt(torch.tensor(RATIOS))
    w_ratios = 1 / h_ratios
    if convention == "torchvision":
        generator = AnchorGenerator(sizes=((size,),), aspect_ratios=(RATIOS,))
        return generator.generate_anchors([size], list(RATIOS))
    ws, hs = stride * w_ratios * 8, stride * h_ratios * 8
    if convention == "mmdet2":
        return torch.stack([-0.5 * ws, -0.5 * hs, 0.5 * ws, 0.5 * hs], dim=1)
    centre = 0.5 * (stride - 1)  # mmdetection v1: pixel-index centres and +1 widths, rounded
    return torch.round(torch.stack([centre - 0.5 * (ws - 1), centre - 0.5 * (hs - 1),
                                    centre + 0.5 * (ws - 1), centre + 0.5 * (hs - 1)], dim=1))


def decode(deltas: torch.Tensor, boxes: torch.Tensor, convention: str, stds=(0.1, 0.1, 0.2, 0.2)) -> torch.Tensor:
    if convention == "torchvision":
        return BoxCoder(weights=tuple(1 / s for s in stds)).decode_single(deltas, boxes)
    d = deltas * torch.tensor(stds)
    extra = 1.0 if convention == "mmdet1" else 0.0
    widths, heights = boxes[:, 2] - boxes[:, 0] + extra, boxes[:, 3] - boxes[:, 1] + extra
    cx, cy = (boxes[:, 0] + boxes[:, 2]) * 0.5, (boxes[:, 1] + boxes[:, 3]) * 0.5
    clamp = abs(math.log(16 / 1000))
    gw, gh = widths * d[:, 2].clamp(-clamp, clamp).exp(), heights * d[:, 3].clamp(-clamp, clamp).exp()
    gx, gy = cx + widths * d[:, 0], cy + heights * d[:, 1]
    half = 0.5 * extra
    return torch.stack([gx - gw * 0.5 + half, gy - gh * 0.5 + half, gx + gw * 0.5 - half, gy + gh * 0.5 - half], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=2000)
    parser.add_argument("--photo", default="../shared/data/photos/bus.jpg")
    args = parser.parse_args()
    torch.manual_seed(0)
    print("| level stride | anchor corner difference, torchvision vs mmdet v1 (px) | vs mmdet 2.x (px) |")
    print("|---|---|---|")
    for stride in STRIDES:
        tv = base_anchors(stride, "torchvision")
        v1 = base_anchors(stride, "mmdet1")
        v2 = base_anchors(stride, "mmdet2")
        print(f"| {stride} | {(tv - v1).abs().max():.2f} | {(tv - v2).abs().max():.2f} |")
    x1y1 = torch.rand(args.boxes, 2) * 300
    boxes = torch.cat([x1y1, x1y1 + 16 + torch.rand(args.boxes, 2) * 280], dim=1)
    deltas = torch.randn(args.boxes, 4)
    tv = decode(deltas, boxes, "torchvision")
    for name in ("mmdet1", "mmdet2"):
        other = decode(deltas, boxes, name)
        print(f"box decoding, torchvision vs {name}: max {(tv - other).abs().max():.2f} px, "
              f"mean {(tv - other).abs().mean():.3f} px over {args.boxes} random deltas")
    features = _features(args.photo)
    rois = torch.cat([torch.zeros(args.boxes, 1), boxes / 2], dim=1)  # boxes in a 400 x 608 picture, stride-4 map
    ours = roi_align(features, rois, (7, 7), spatial_scale=0.25, sampling_ratio=2, aligned=False)
    legacy = rois.clone()
    legacy[:, 3:] += 1  # mmdetection v1's RoIAlign ends at (x2 + 1) * scale
    theirs = roi_align(features, legacy, (7, 7), spatial_scale=0.25, sampling_ratio=2, aligned=False)
    relative = ((ours - theirs).flatten(1).norm(dim=1) / theirs.flatten(1).norm(dim=1)).mean()
    print(f"RoIAlign 7x7 features, torchvision vs mmdet v1 (box ends +1 px), of a stride-4 map of {args.photo}: "
          f"mean relative difference {relative:.3f}")
    # mmdetection 2.x: mmcv RoIAlign with aligned=True (half-pixel offset) and adaptive sampling.
    v2 = roi_align(features, rois, (7, 7), spatial_scale=0.25, sampling_ratio=0, aligned=True)
    relative = ((ours - v2).flatten(1).norm(dim=1) / v2.flatten(1).norm(dim=1)).mean()
    print(f"RoIAlign 7x7 features, torchvision vs mmdet 2.x (aligned, adaptive sampling): mean relative "
          f"difference {relative:.3f}")


def _features(photo: str) -> torch.Tensor:
    """A stride-4 "feature map" with natural-image statistics: the photo's pixels, (1, 3, 100, 152)."""
    import cv2

    image = cv2.imread(photo)
    if image is None:
        raise SystemExit(f"{photo} is not readable: pass --photo PATH")
    image = cv2.resize(image, (152, 100), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255


if __name__ == "__main__":
    main()
