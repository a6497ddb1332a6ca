"""Segmentation losses as in the official HRNet code: cross-entropy with an ignore label, OHEM, and
the weighted sum over OCR's (auxiliary, main) outputs.

Two quantities are defined so that a recipe trains the same way on 1 or N processes:
`ohem_min_kept_per_image` (the official MIN_KEPT counts pixels per GPU batch: 131072 for 3 images per
GPU is 43691 per image), and, with OHEM, the official normalisation of the auxiliary term
(`CrossEntropy(reduction="none")` added to the OHEM scalar and averaged over every pixel, ignored
ones included: `aux_normalization="all_pixels"`).

Logits at stride 4 are upsampled (bilinear, the model's align_corners) to the label size before the
loss, as the official criterion does.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


AUX_NORMALIZATIONS = ("all_pixels", "labelled")


def upsample_to(logits: torch.Tensor, size: Sequence[int], align_corners: bool) -> torch.Tensor:
    """(N, K, h, w) -> (N, K, H, W) bilinear; a no-op when the size already matches."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=align_corners)


def _no_pixels(logits: torch.Tensor) -> torch.Tensor:
    # A zero that keeps the graph: a batch whose labels are all ignored must not give NaN.
    return logits.sum() * 0.0


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, *, ignore_index: int,
                  weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over labelled pixels. logits (N, K, H, W), target (N, H, W) int64."""
    if not (target != ignore_index).any():
        return _no_pixels(logits)
    return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)


def cross_entropy_all_pixels(logits: torch.Tensor, target: torch.Tensor, *, ignore_index: int,
                             weight: torch.Tensor | None = None) -> torch.Tensor:
    """Sum of the (class-weighted) per-pixel losses over labelled pixels divided by the number of
    all pixels, ignored ones included: the official auxiliary term beside OHEM, whose per-pixel map
    (reduction "none", 0 at ignored pixels) is averaged with `loss.mean()`."""
    losses = F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index, reduction="none")
    return losses.mean()


def ohem_cross_entropy(logits: torch.Tensor, target: torch.Tensor, *, ignore_index: int, thresh: float = 0.9,
                       min_kept: int = 131072, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Online hard example mining (official `OhemCrossEntropy`): average the loss over the labelled
    pixels whose probability for their true class is below max(thresh, p_k), where p_k is the
    `min_kept`-th smallest such probability in the batch, so at least ~min_kept pixels are kept
    (`min_kept` counts pixels of this forward pass; `SegmentationLoss` scales it per image).
    """
    valid = target != ignore_index
    if not valid.any():
        return _no_pixels(logits)
    losses = F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index, reduction="none")[valid]
    with torch.no_grad():
        probs = logits.detach().float().softmax(dim=1)
        true_prob = probs.gather(1, target.masked_fill(~valid, 0).unsqueeze(1)).squeeze(1)[valid]
        kth = min(min_kept, true_prob.numel() - 1)
        threshold = max(torch.kthvalue(true_prob, kth + 1).values.item(), thresh)
        hard = true_prob < threshold
    if not hard.any():
        return _no_pixels(logits)
    return losses[hard].mean()


class SegmentationLoss(nn.Module):
    """Weighted sum of per-output losses: (aux, main) for OCR, (main,) for HRNetV2.

    The official criterion applies OHEM (when enabled) to the last output only and plain
    cross-entropy to the others; OCR's weights are (0.4, 1). With OHEM, `aux_normalization`
    "all_pixels" divides the auxiliary losses by all pixels (official), "labelled" by the labelled
    pixels' weight sum (PyTorch's weighted mean, as without OHEM). The OHEM budget of a forward pass
    is `ohem_min_kept_per_image` x its batch size.
    """

    def __init__(
        self,
        *,
        ignore_index: int,
        align_corners: bool,
        output_weights: Sequence[float] = (1.0,),
        class_weights: torch.Tensor | None = None,
        ohem: bool = False,
        ohem_thresh: float = 0.9,
        ohem_min_kept_per_image: int = 43691,
        aux_normalization: str = "all_pixels",
    ):
        super().__init__()
        self.ignore_index = ignore_index
        self.align_corners = align_corners
        self.output_weights = tuple(float(w) for w in output_weights)
        self.ohem = ohem
        self.ohem_thresh = ohem_thresh
        if aux_normalization not in AUX_NORMALIZATIONS:
            raise ValueError(f"aux_normalization must be one of {AUX_NORMALIZATIONS}, got {aux_normalization!r}")
        self.ohem_min_kept_per_image = ohem_min_kept_per_image
        self.aux_normalization = aux_normalization
        self.register_buffer("class_weights", class_weights, persistent=False)

    def forward(self, outputs: torch.Tensor | Sequence[torch.Tensor], target: torch.Tensor
                ) -> tuple[torch.Tensor, dict[str, float]]:
        """outputs: logits (N, K, h, w) or a tuple of them; target (N, H, W). -> (loss, parts to log)."""
        outputs = (outputs,) if isinstance(outputs, torch.Tensor) else tuple(outputs)
        weights = self.output_weights[-len(outputs):] if len(self.output_weights) >= len(outputs) else None
        if weights is None:
            raise ValueError(f"the model returns {len(outputs)} outputs but the loss has weights "
                             f"{self.output_weights}; set one weight per output (OCR: [0.4, 1])")
        total, parts = 0.0, {}
        for index, (logits, weight) in enumerate(zip(outputs, weights)):
            logits = upsample_to(logits, target.shape[-2:], self.align_corners)
            if self.ohem and index == len(outputs) - 1:
                loss = ohem_cross_entropy(logits, target, ignore_index=self.ignore_index, thresh=self.ohem_thresh,
                                          min_kept=self.ohem_min_kept_per_image * target.shape[0],
                                          weight=self.class_weights)
            elif self.ohem and self.aux_normalization == "all_pixels":
                loss = cross_entropy_all_pixels(logits, target, ignore_index=self.ignore_index,
                                                weight=self.class_weights)
            else:
                loss = cross_entropy(logits, target, ignore_index=self.ignore_index, weight=self.class_weights)
            total = total + weight * loss
            parts["loss_aux" if index < len(outputs) - 1 else "loss_main"] = float(loss.detach())
        return total, parts
