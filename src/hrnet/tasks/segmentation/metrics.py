"""Confusion-matrix metrics for semantic segmentation, computed on tensors.

The official HRNet code accumulates a K x K confusion matrix (rows: ground truth, columns:
prediction) and reports IoU_c = TP / max(1, GT_c + Pred_c - TP), so a class absent from both the
ground truth and the prediction counts as IoU 0 in the mean. `mIoU` here is that official number;
`mIoU_present` is the mean over classes that appear in the ground truth or the prediction (IoU NaN
excluded), the convention of e.g. mmsegmentation. All values are percentages.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.distributed as dist


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, *, num_classes: int, ignore_index: int) -> torch.Tensor:
    """(K, K) int64 counts: entry [g, p] = pixels with ground truth g predicted as p.

    pred, target: integer tensors of the same shape; pixels whose target is `ignore_index` (or any
    value outside 0..K-1) are skipped.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    target = target.reshape(-1).long()
    pred = pred.reshape(-1).long()
    keep = (target != ignore_index) & (target >= 0) & (target < num_classes)
    index = target[keep] * num_classes + pred[keep].clamp(0, num_classes - 1)
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def metrics_from_confusion(confusion: torch.Tensor, names: Sequence[str] | None = None) -> dict[str, float]:
    """mIoU (official: absent classes count 0), mIoU_present (NaN-excluded), pixel_acc, mean_acc and
    `IoU/<name>` per class (NaN for a class absent from ground truth and prediction), in percent."""
    confusion = confusion.double()
    true_pos = confusion.diag()
    gt = confusion.sum(dim=1)
    predicted = confusion.sum(dim=0)
    union = gt + predicted - true_pos
    iou = true_pos / union.clamp(min=1)
    iou_nan = torch.where(union > 0, iou, torch.full_like(iou, float("nan")))
    total = gt.sum().clamp(min=1)
    results = {
        "mIoU": 100 * iou.mean().item(),
        "mIoU_present": 100 * iou_nan.nanmean().item() if (union > 0).any() else float("nan"),
        "pixel_acc": 100 * (true_pos.sum() / total).item(),
        "mean_acc": 100 * (true_pos / gt.clamp(min=1)).mean().item(),
    }
    names = names or [str(i) for i in range(confusion.shape[0])]
    for name, value in zip(names, iou_nan.tolist()):
        results[f"IoU/{name}"] = 100 * value
    return results


class ConfusionMeter:
    """Accumulates a confusion matrix over batches; `synchronize` sums it across ranks when a
    torch.distributed process group exists (each rank then holds the whole-dataset matrix)."""

    def __init__(self, *, num_classes: int, ignore_index: int, names: Sequence[str] | None = None,
                 device: torch.device | str = "cpu"):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.names = list(names) if names is not None else None
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """pred, target: (N, H, W) class ids."""
        self.confusion += confusion_matrix(pred.to(self.confusion.device), target.to(self.confusion.device),
                                           num_classes=self.num_classes, ignore_index=self.ignore_index)

    def synchronize(self) -> None:
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.confusion, op=dist.ReduceOp.SUM)

    def compute(self) -> dict[str, float]:
        return metrics_from_confusion(self.confusion, self.names)
