"""ONNX export with dynamic batch, height and width, checked against PyTorch with onnxruntime."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn


@dataclass
class ExportReport:
    path: Path
    # Per checked input shape: relative error of onnxruntime against PyTorch (float32), and of
    # PyTorch float32 itself against float64: the floor any float32 runtime can reach.
    checks: list[tuple[tuple[int, ...], float, float]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"wrote {self.path} (inputs: images [N, 3, H, W], dynamic N, H, W)"]
        lines += [f"onnxruntime vs PyTorch at {list(s)}: relative error {e:.2e} (PyTorch float32 vs float64: {f:.2e})"
                  for s, e, f in self.checks]
        return "\n".join(lines)


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |actual - expected| / max |expected|: the tolerance measure of the parity checks."""
    return float((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-12))


def check_onnx(model: nn.Module, path: str | os.PathLike,
               shapes: list[tuple[int, ...]]) -> list[tuple[tuple[int, ...], float, float]]:
    """Run the exported file with onnxruntime, and the model in float32 and float64, on random
    inputs of each shape: (shape, onnx-vs-float32 error, float32-vs-float64 error)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    generator = torch.Generator().manual_seed(0)
    reference = copy.deepcopy(model).double()
    results = []
    for shape in shapes:
        x = torch.randn(*shape, generator=generator)
        with torch.no_grad():
            expected = model(x)
            exact = reference(x.double())
        actual = torch.from_numpy(session.run(None, {name: x.numpy()})[0])
        if actual.shape != expected.shape:
            raise RuntimeError(f"{path}: onnxruntime gives shape {tuple(actual.shape)} for input {shape}, "
                               f"PyTorch {tuple(expected.shape)}")
        results.append((tuple(shape), relative_error(actual, expected), relative_error(expected.double(), exact)))
    return results


def export_onnx(model: nn.Module, path: str | os.PathLike, *, input_size: tuple[int, int] = (256, 256),
                opset: int = 18, check: bool = True, tolerance: float = 1e-4) -> ExportReport:
    """Export an eval-mode classification, pose or segmentation model to ONNX.

    Input "images" (N, 3, H, W) with N, H and W dynamic; output "output": the eval-mode tensor
    (logits, heatmaps or segmentation logits). With `check`, onnxruntime must agree with PyTorch
    within `tolerance` (relative) at `input_size` and at a second, odd size; a larger difference is
    accepted only while it stays within 10x of PyTorch's own float32 rounding (an untrained,
    badly conditioned model), since no float32 runtime can do better than that.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = input_size
    was_training = model.training
    model.eval()
    try:
        # Batch 2 in the example: torch.export specialises dimensions of size 1.
        example = torch.randn(2, 3, height, width)
        dims = {0: torch.export.Dim("batch", min=1),
                2: torch.export.Dim("height", min=32), 3: torch.export.Dim("width", min=32)}
        torch.onnx.export(model, (example,), str(path), dynamo=True, dynamic_shapes=({**dims},),
                          input_names=["images"], output_names=["output"], opset_version=opset,
                          external_data=False, verbose=False)
        report = ExportReport(path)
        if check:
            report.checks = check_onnx(model, path, [(2, 3, height, width), (1, 3, height + 17, width + 31)])
            for shape, error, rounding in report.checks:
                if error > max(tolerance, 10 * rounding):
                    raise RuntimeError(f"{path}: onnxruntime differs from PyTorch by {error:.2e} at input {list(shape)}"
                                       f" (tolerance {tolerance:.0e}; float32 rounding {rounding:.1e})")
        return report
    finally:
        model.train(was_training)
