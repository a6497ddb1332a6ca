"""Heatmaps -> keypoints in original-image pixels: flip test, argmax, quarter offset or DARK.

Numbers match the official `get_final_preds` (and, for DARK, Zhang et al. CVPR 2020's
`taylor` + `gaussian_blur` post-processing) on the same heatmaps.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch
from torch import nn

from .transforms import PIXEL_STD, affine_matrix, apply_affine

DECODERS = ("quarter", "dark", "argmax", "udp")


def flip_back(heatmaps: torch.Tensor, flip_permutation: Sequence[int]) -> torch.Tensor:
    """Heatmaps (N, K, h, w) of a flipped image -> heatmaps of the original: mirror and swap left/right."""
    return heatmaps.flip(3)[:, list(flip_permutation)]


@torch.no_grad()
def flip_test(model: nn.Module, images: torch.Tensor, flip_permutation: Sequence[int], *, shift: bool = True
              ) -> torch.Tensor:
    """(N, 3, H, W) -> (N, K, h, w): the mean of the heatmaps of the image and of its mirror image.

    `shift` moves the mirrored heatmaps one cell right, as the official TEST.SHIFT_HEATMAP: the
    stride-4 features of a mirrored image are not aligned with those of the original."""
    heatmaps = model(images)
    flipped = flip_back(model(images.flip(3)), flip_permutation)
    if shift:
        flipped = torch.cat([flipped[..., :1], flipped[..., :-1]], dim=3)
    return (heatmaps + flipped) * 0.5


def argmax_coords(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, h, w) -> integer peak positions (N, K, 2) as float (x, y) and peak values (N, K, 1).
    A joint whose peak is not positive is put at (0, 0), as the official `get_max_preds`."""
    n, k, _, width = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    index = flat.argmax(axis=2)
    maxvals = flat.max(axis=2)[..., None]
    coords = np.stack([index % width, index // width], axis=2).astype(np.float32)
    return coords * (maxvals > 0), maxvals


def quarter_offset(heatmaps: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Move each peak a quarter cell towards its higher neighbour, per axis (official POST_PROCESS).

    As in the official code, only peaks with 1 < x < w - 1 and 1 < y < h - 1 move: a peak in
    the first two or the last column (row) keeps its integer position in both directions."""
    coords = coords.copy()
    height, width = heatmaps.shape[2:]
    for n, k in np.ndindex(*coords.shape[:2]):
        hm = heatmaps[n, k]
        px, py = int(np.floor(coords[n, k, 0] + 0.5)), int(np.floor(coords[n, k, 1] + 0.5))
        if 1 < px < width - 1 and 1 < py < height - 1:
            diff = np.array([hm[py, px + 1] - hm[py, px - 1], hm[py + 1, px] - hm[py - 1, px]])
            coords[n, k] += np.sign(diff) * 0.25
    return coords


def _modulate(heatmap: np.ndarray, kernel: int) -> np.ndarray:
    """DARK's distribution modulation: Gaussian blur (zero-padded), rescaled to the original peak."""
    border = (kernel - 1) // 2
    peak = heatmap.max()
    padded = np.zeros((heatmap.shape[0] + 2 * border, heatmap.shape[1] + 2 * border), dtype=np.float64)
    padded[border:-border, border:-border] = heatmap
    blurred = cv2.GaussianBlur(padded, (kernel, kernel), 0)[border:-border, border:-border]
    return blurred * (peak / blurred.max())


def dark_refine(heatmaps: np.ndarray, coords: np.ndarray, *, kernel: int = 11) -> np.ndarray:
    """DARK: on the log of the modulated heatmap, one Newton step from the integer peak,
    offset = -H^-1 * gradient, with central differences; only for 1 < x < w - 2, 1 < y < h - 2."""
    coords = coords.copy()
    height, width = heatmaps.shape[2:]
    for n, k in np.ndindex(*coords.shape[:2]):
        hm = np.log(np.maximum(_modulate(heatmaps[n, k], kernel), 1e-10))
        px, py = int(coords[n, k, 0]), int(coords[n, k, 1])
        if not (1 < px < width - 2 and 1 < py < height - 2):
            continue
        dx = 0.5 * (hm[py, px + 1] - hm[py, px - 1])
        dy = 0.5 * (hm[py + 1, px] - hm[py - 1, px])
        dxx = 0.25 * (hm[py, px + 2] - 2 * hm[py, px] + hm[py, px - 2])
        dxy = 0.25 * (hm[py + 1, px + 1] - hm[py - 1, px + 1] - hm[py + 1, px - 1] + hm[py - 1, px - 1])
        dyy = 0.25 * (hm[py + 2, px] - 2 * hm[py, px] + hm[py - 2, px])
        if dxx * dyy - dxy**2 != 0:
            hessian = np.array([[dxx, dxy], [dxy, dyy]])
            coords[n, k] -= np.linalg.inv(hessian) @ np.array([dx, dy])
    return coords


def to_original(coords: np.ndarray, centers: np.ndarray, scales: np.ndarray, heatmap_size: Sequence[int]
                ) -> np.ndarray:
    """Heatmap coordinates (N, K, 2) -> original-image pixels, through the inverse of each
    person's crop (official `transform_preds`); heatmap_size is (width, height)."""
    out = np.zeros(coords.shape, dtype=np.float64)
    for n in range(len(coords)):
        matrix = affine_matrix(centers[n], scales[n], 0.0, heatmap_size, inverse=True)
        out[n] = apply_affine(coords[n], matrix)
    return out


def udp_to_original(coords: np.ndarray, centers: np.ndarray, scales: np.ndarray, heatmap_size: Sequence[int]
                    ) -> np.ndarray:
    """UDP: heatmap coordinates (N, K, 2) -> original pixels, heatmap pixel centres 0 and w - 1
    landing on the box edges (mmpose 0.x `transform_preds(use_udp=True)`; heatmap_size (w, h)):
    x = u * S_w / (w - 1) + c_x - S_w / 2 with S = scale * 200."""
    width, height = (float(v) for v in heatmap_size)
    out = np.zeros(coords.shape, dtype=np.float64)
    for n in range(len(coords)):
        size = np.asarray(scales[n], dtype=np.float64) * PIXEL_STD
        out[n, :, 0] = coords[n, :, 0] * (size[0] / (width - 1.0)) + centers[n][0] - size[0] * 0.5
        out[n, :, 1] = coords[n, :, 1] * (size[1] / (height - 1.0)) + centers[n][1] - size[1] * 0.5
    return out


def dark_udp_refine(heatmaps: np.ndarray, coords: np.ndarray, *, kernel: int = 11) -> np.ndarray:
    """UDP's refinement of integer peaks (N, K, 2) on heatmaps (N, K, h, w), mmpose 0.x
    `post_dark_udp`: each map Gaussian-blurred (OpenCV's border, no renormalisation, unlike DARK's
    modulation), clipped to [0.001, 50] and logged, edge-padded by one; then one Newton step
    coords -= (H + eps I)^-1 g with g = (dx, dy) central differences and
    H = [[dxx, dxy], [dxy, dyy]]: dxx = f(x+1) - 2f + f(x-1), dxy = (f(x+1,y+1) - f(x+1) - f(y+1) + 2f
    - f(x-1) - f(y-1) + f(x-1,y-1)) / 2, eps = float32 epsilon. Neighbours are read from the
    flattened padded maps, as mmpose does (so a peak at -1, a map without a positive value, reads
    the same cells as there). Computed in float32 like the published code."""
    maps = np.array(heatmaps, dtype=np.float32, copy=True)
    n, k, height, width = maps.shape
    for plane in maps.reshape(-1, height, width):
        plane[...] = cv2.GaussianBlur(plane, (kernel, kernel), 0)
    np.clip(maps, 0.001, 50.0, out=maps)
    np.log(maps, out=maps)
    flat = np.pad(maps, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge").reshape(-1)
    row = width + 2
    coords = np.array(coords, dtype=np.float32, copy=True)
    index = (coords[..., 0] + 1 + (coords[..., 1] + 1) * row) + row * (height + 2) * np.arange(n * k).reshape(n, k)
    index = index.astype(np.int64)
    at = lambda offset: flat[index + offset]  # noqa: E731
    centre, right, left, down, up = at(0), at(1), at(-1), at(row), at(-row)
    gradient = np.stack([0.5 * (right - left), 0.5 * (down - up)], axis=-1)[..., None]
    dxx = right - 2 * centre + left
    dyy = down - 2 * centre + up
    dxy = 0.5 * (at(row + 1) - right - down + 2 * centre - left - up + at(-row - 1))
    hessian = np.stack([np.stack([dxx, dxy], -1), np.stack([dxy, dyy], -1)], -2) + np.finfo(np.float32).eps * np.eye(2)
    coords -= (np.linalg.inv(hessian) @ gradient)[..., 0]
    return coords


def decode_udp(heatmaps: np.ndarray, centers: np.ndarray, scales: np.ndarray, *, kernel: int = 11
               ) -> tuple[np.ndarray, np.ndarray]:
    """UDP decoding (mmpose 0.x `keypoints_from_heatmaps(use_udp=True)`, Gaussian targets): argmax
    (-1 where a map has no positive value), `dark_udp_refine`, `udp_to_original`. Returns keypoints
    (N, K, 2) in original pixels and the heatmap peaks (N, K, 1). The crop must be `udp_crop`'s and
    flip test unshifted (`flip_test(..., shift=False)`)."""
    coords, maxvals = argmax_coords(heatmaps)
    coords = np.where(maxvals > 0, coords, -1.0)
    coords = dark_udp_refine(heatmaps, coords, kernel=kernel)
    height, width = heatmaps.shape[2:]
    return udp_to_original(coords, np.asarray(centers), np.asarray(scales), (width, height)), maxvals


def decode_heatmaps(heatmaps: np.ndarray | torch.Tensor, centers: np.ndarray, scales: np.ndarray, *,
                    method: str = "quarter", dark_kernel: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (N, K, h, w) with each person's center (N, 2) and scale (N, 2) ->
    keypoints (N, K, 2) in original pixels and their scores (N, K, 1) (the heatmap peaks).

    method: "quarter" (official default), "dark", "argmax" (integer peaks, no refinement), or "udp"
    (`decode_udp`; `dark_kernel` is its blur). `hrnet.Weights.decoding` / `dark_kernel` name the
    published checkpoint's.
    """
    if method not in DECODERS:
        raise ValueError(f"unknown decoding {method!r}; choose one of {', '.join(DECODERS)}")
    if isinstance(heatmaps, torch.Tensor):
        heatmaps = heatmaps.detach().float().cpu().numpy()
    if method == "udp":
        return decode_udp(heatmaps, centers, scales, kernel=dark_kernel)
    coords, maxvals = argmax_coords(heatmaps)
    if method == "quarter":
        coords = quarter_offset(heatmaps, coords)
    elif method == "dark":
        coords = dark_refine(heatmaps, coords, kernel=dark_kernel)
    height, width = heatmaps.shape[2:]
    return to_original(coords, np.asarray(centers), np.asarray(scales), (width, height)), maxvals
