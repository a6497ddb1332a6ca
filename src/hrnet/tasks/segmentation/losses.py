"""Segmentation losses as in the official HRNet code: cross-entropy with an ignore label, OHEM, and
the weighted sum over OCR's (auxiliary, main) outputs.

Logits at stride 4 are upsampled (bilinear, the model's align_corners) to the label size before the
loss, as the official criterion does.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


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


def ohem_cross_entropy(logits: torch.Tensor, target: torch.Tensor, *, ignore_index: int, thresh: float = 0.9,
                       min_kept: int = 131072, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Online hard example mining (official `OhemCrossEntropy`): average the loss over the labelled
    pixels whose probability for their true class is below max(thresh, p_k), where p_k is the
    `min_kept`-th smallest such probability in the batch, so at least ~min_kept pixels are kept.
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
    cross-entropy to the others; OCR's weights are (0.4, 1).
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
        ohem_min_kept: int = 131072,
    ):
        super().__init__()
        self.ignore_index = ignore_index
        self.align_corners = align_corners
        self.output_weights = tuple(float(w) for w in output_weights)
        self.ohem = ohem
        self.ohem_thresh = ohem_thresh
        self.ohem_min_kept = ohem_min_kept
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
                                          min_kept=self.ohem_min_kept, weight=self.class_weights)
            else:
                loss = cross_entropy(logits, target, ignore_index=self.ignore_index, weight=self.class_weights)
            total = total + weight * loss
            parts["loss_aux" if index < len(outputs) - 1 else "loss_main"] = float(loss.detach())
        return total, parts
