"""How close a runtime's outputs are to eager PyTorch's, per precision, and when int8 has collapsed.

float32 runtimes must match eager within `FP32_TOLERANCE` (relative: max |a - b| / max |b|) or
within 10x PyTorch's own float32 rounding (float32 against float64), which no float32 runtime
can beat. int8 is compared on real inputs (the calibration images, or a validation set): the
Pearson correlation of the outputs and the task's agreement (classification: same top-1 class;
segmentation: same class per pixel; pose: the heatmap peak within one heatmap pixel). Below
`COLLAPSE` the int8 model is reported as collapsed (a warning and `passed=False`), never hidden.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass
from typing import Any, Iterable

import torch
from torch import nn

from ..export import flat_outputs, relative_error

log = logging.getLogger("hrnet")
FP32_TOLERANCE = 1e-4
# The eager fast path (`hrnet.optimize`) against the unoptimised model, relative error.
TORCH_TOLERANCES = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 5e-2}
# int8 below these (correlation, agreement) is reported as collapsed.
COLLAPSE = {"correlation": 0.9, "agreement": 0.5}
AGREEMENT_NAMES = {"classification": "top-1 agreement", "segmentation": "pixel agreement",
                   "pose": "keypoint peak agreement"}


@dataclass
class ParityCheck:
    """One comparison of a runtime with eager PyTorch on `inputs` ("random" or "calibration" /
    "validation" images) of `shape`."""

    runtime: str
    precision: str
    inputs: str
    shape: list[int]
    relative_error: float
    correlation: float
    agreement: float | None = None
    agreement_name: str | None = None
    passed: bool = True
    note: str = ""

    def __str__(self) -> str:
        text = (f"{self.runtime} {self.precision} vs torch eager, {self.inputs} input {self.shape}: relative error "
                f"{self.relative_error:.2e}, correlation {self.correlation:.5f}")
        if self.agreement is not None:
            text += f", {self.agreement_name} {100 * self.agreement:.1f}%"
        if self.note:
            text += f" ({self.note})"
        return text + ("" if self.passed else "  ** FAILED **")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def correlation(actual: torch.Tensor, expected: torch.Tensor) -> float:
    a, b = actual.double().flatten(), expected.double().flatten()
    a, b = a - a.mean(), b - b.mean()
    denominator = (a.norm() * b.norm()).item()
    return float((a @ b).item() / denominator) if denominator > 0 else float(torch.equal(actual, expected))


def agreement(actual: torch.Tensor, expected: torch.Tensor, task: str | None) -> float | None:
    """The fraction of predictions that agree, in the task's own terms (None for other outputs)."""
    if task == "classification" and expected.dim() == 2:
        return float((actual.argmax(1) == expected.argmax(1)).double().mean())
    if task == "segmentation" and expected.dim() == 4:
        return float((actual.argmax(1) == expected.argmax(1)).double().mean())
    if task == "pose" and expected.dim() == 4:
        width = expected.shape[-1]
        peak_a, peak_b = actual.flatten(2).argmax(-1), expected.flatten(2).argmax(-1)
        close = ((peak_a // width - peak_b // width).abs() <= 1) & ((peak_a % width - peak_b % width).abs() <= 1)
        return float(close.double().mean())
    return None


def _concat(parts: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    """Output i of every batch, flattened into one vector (batches may differ in size)."""
    return [torch.cat([p[i].flatten() for p in parts]) for i in range(len(parts[0]))] if parts else []


def compare(module: nn.Module, reference: nn.Module, batches: Iterable[torch.Tensor], *, runtime: str,
            precision: str, inputs: str, task: str | None) -> ParityCheck:
    """Run both models over `batches` (N, 3, H, W) and compare all outputs together."""
    errors, got_all, want_all, agree, shape = [], [], [], [], None
    with torch.no_grad():
        for batch in batches:
            got, want = flat_outputs(module(batch)), flat_outputs(reference(batch))
            shape = shape or list(batch.shape)
            errors.append(max(relative_error(g.float(), w.float()) for g, w in zip(got, want)))
            agreed = agreement(got[-1].float(), want[-1].float(), task)
            if agreed is not None:
                agree.append((agreed, batch.shape[0]))
            got_all.append([g.float() for g in got])
            want_all.append([w.float() for w in want])
    if shape is None:
        raise ValueError("compare: no batches to compare on")
    corr = min(correlation(g, w) for g, w in zip(_concat(got_all), _concat(want_all)))
    share = sum(a * n for a, n in agree) / sum(n for _, n in agree) if agree else None
    return ParityCheck(runtime=runtime, precision=precision, inputs=inputs, shape=shape,
                       relative_error=max(errors), correlation=corr, agreement=share,
                       agreement_name=AGREEMENT_NAMES.get(task or "") if share is not None else None)


def float32_floor(reference: nn.Module, x: torch.Tensor) -> float:
    """PyTorch float32 against float64 on `x`: the rounding floor of any float32 runtime."""
    exact = copy.deepcopy(reference).double()
    with torch.no_grad():
        return max(relative_error(a.double(), b) for a, b in
                   zip(flat_outputs(reference(x)), flat_outputs(exact(x.double()))))


def judge_fp32(check: ParityCheck, reference: nn.Module, x: torch.Tensor) -> ParityCheck:
    """Pass within FP32_TOLERANCE, else within 10x the float32 rounding floor (computed only then)."""
    if check.relative_error <= FP32_TOLERANCE:
        return check
    floor = float32_floor(reference, x)
    check.note = f"float32 rounding floor {floor:.1e}"
    check.passed = check.relative_error <= 10 * floor
    return check


def judge_int8(check: ParityCheck) -> ParityCheck:
    """Mark (and log) an int8 model whose outputs no longer follow float32's."""
    low_corr = check.correlation < COLLAPSE["correlation"]
    low_agree = check.agreement is not None and check.agreement < COLLAPSE["agreement"]
    if low_corr or low_agree:
        check.passed = False
        check.note = (f"int8 COLLAPSED: below correlation {COLLAPSE['correlation']}"
                      + (f" / {check.agreement_name} {100 * COLLAPSE['agreement']:.0f}%" if low_agree else "")
                      + "; calibrate on more, and more typical, images, or use fp32")
        log.warning("%s", check)
    return check
