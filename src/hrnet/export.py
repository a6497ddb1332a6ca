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


def flat_outputs(output) -> list[torch.Tensor]:
    """A model's output as the list of tensors an exported graph returns (a dict: its values in order)."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        return list(output.values())
    return list(output)


class OutputsAsTuple(nn.Module):
    """Wraps a model that returns a dict of tensors (the detectors' backbone: levels "0".."4") so that
    export sees a tuple, in the dict's order; `names` are the dict's keys."""

    def __init__(self, model: nn.Module, names: list[str]):
        super().__init__()
        self.model = model
        self.names = names
        self.train(model.training)  # a new module starts in training mode: take the model's

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(flat_outputs(self.model(x)))


def check_onnx(model: nn.Module, path: str | os.PathLike,
               shapes: list[tuple[int, ...]]) -> list[tuple[tuple[int, ...], float, float]]:
    """Run the exported file with onnxruntime, and the model in float32 and float64, on random
    inputs of each shape: (shape, onnx-vs-float32 error, float32-vs-float64 error); with several
    outputs, the largest error over them."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    generator = torch.Generator().manual_seed(0)
    reference = copy.deepcopy(model).double()
    results = []
    for shape in shapes:
        x = torch.randn(*shape, generator=generator)
        with torch.no_grad():
            expected = flat_outputs(model(x))
            exact = flat_outputs(reference(x.double()))
        actual = [torch.from_numpy(a) for a in session.run(None, {name: x.numpy()})]
        errors, roundings = [], []
        for got, want, want64 in zip(actual, expected, exact, strict=True):
            if got.shape != want.shape:
                raise RuntimeError(f"{path}: onnxruntime gives shape {tuple(got.shape)} for input {shape}, "
                                   f"PyTorch {tuple(want.shape)}")
            errors.append(relative_error(got, want))
            roundings.append(relative_error(want.double(), want64))
        results.append((tuple(shape), max(errors), max(roundings)))
    return results


EXPORTERS = ("dynamo", "torchscript")


def _export_torchscript(model: nn.Module, example: torch.Tensor, path: Path, *, names: list[str], opset: int,
                        dynamic: bool) -> None:
    import warnings

    axes = {"images": {0: "batch", 2: "height", 3: "width"} if dynamic else {0: "batch"}}
    # Output names must be identifiers for the tracer ("0" is not): renamed after export.
    traced = [f"output_{i}" for i in range(len(names))]
    with torch.no_grad():
        ranks = [out.dim() for out in flat_outputs(model(example))]
    for name, rank in zip(traced, ranks):
        axes[name] = {0: "batch", **({2: f"{name}_height", 3: f"{name}_width"} if rank == 4 and dynamic else {})}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own deprecation notice and tracer warnings
        torch.onnx.export(model, (example,), str(path), dynamo=False, input_names=["images"], output_names=traced,
                          dynamic_axes=axes, opset_version=min(opset, 17), do_constant_folding=True)
    import onnx

    graph = onnx.load(str(path))
    renames = dict(zip(traced, names))
    for node in graph.graph.node:
        node.output[:] = [renames.get(o, o) for o in node.output]
    for output in graph.graph.output:
        output.name = renames.get(output.name, output.name)
    _inline_shared_initializers(graph.graph)
    onnx.save(graph, str(path))


def _inline_shared_initializers(graph) -> None:
    """The tracer stores equal constants once and hands them on through Identity nodes (equal
    folded biases of untrained BatchNorms, for one); quantizers expect each weight and bias to be
    an initializer of its own, so each such Identity becomes a copy of the initializer."""
    import onnx

    initializers = {t.name: t for t in graph.initializer}
    graph_outputs = {o.name for o in graph.output}
    keep = []
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in initializers and node.output[0] not in graph_outputs:
            copy_ = onnx.TensorProto()
            copy_.CopyFrom(initializers[node.input[0]])
            copy_.name = node.output[0]
            graph.initializer.append(copy_)
        else:
            keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)


def export_onnx(model: nn.Module, path: str | os.PathLike, *, input_size: tuple[int, int] = (256, 256),
                opset: int = 18, check: bool = True, tolerance: float = 1e-4, dynamic: bool = True,
                min_size: int = 32, exporter: str = "dynamo") -> ExportReport:
    """Export an eval-mode classification, pose or segmentation model (or a detector's backbone) to ONNX.

    Input "images" (N, 3, H, W) with N, H and W dynamic (H and W at least `min_size`); with
    `dynamic=False` H and W are fixed at `input_size` (N stays dynamic). Output "output": the
    eval-mode tensor (logits, heatmaps or segmentation logits); a model returning a dict of tensors
    (HRNetV2p: pyramid levels "0".."4") gives one output per key, named by it. With `check`,
    onnxruntime must agree with PyTorch within `tolerance` (relative) at `input_size` and at a
    second, odd size (the same size when not dynamic); a larger difference is accepted only while
    it stays within 10x of PyTorch's own float32 rounding (an untrained, badly conditioned model),
    since no float32 runtime can do better than that.

    `exporter`: "dynamo" (torch.export, the default) or "torchscript" (the legacy tracer, deprecated
    by PyTorch but 20-50x faster on HRNet, whose graph is static apart from the sizes; the parity
    check at a second size shows that the sizes were traced, not baked in).
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter {exporter!r}: choose one of {', '.join(EXPORTERS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = input_size
    was_training = model.training
    model.eval()
    try:
        # Batch 2 in the example: torch.export specialises dimensions of size 1.
        example = torch.randn(2, 3, height, width)
        with torch.no_grad():
            sample = model(example)
        names = [str(k) for k in sample] if isinstance(sample, dict) else ["output"]
        exported = OutputsAsTuple(model, names) if isinstance(sample, dict) else model
        if exporter == "torchscript":
            _export_torchscript(exported, example, path, names=names, opset=opset, dynamic=dynamic)
        else:
            dims = {0: torch.export.Dim("batch", min=1)}
            if dynamic:
                dims.update({2: torch.export.Dim("height", min=min_size), 3: torch.export.Dim("width", min=min_size)})
            torch.onnx.export(exported, (example,), str(path), dynamo=True, dynamic_shapes=({**dims},),
                              input_names=["images"], output_names=names, opset_version=opset,
                              external_data=False, verbose=False)
        report = ExportReport(path)
        if check:
            second = (1, 3, height + 17, width + 31) if dynamic else (1, 3, height, width)
            report.checks = check_onnx(model, path, [(2, 3, height, width), second])
            for shape, error, rounding in report.checks:
                if error > max(tolerance, 10 * rounding):
                    raise RuntimeError(f"{path}: onnxruntime differs from PyTorch by {error:.2e} at input {list(shape)}"
                                       f" (tolerance {tolerance:.0e}; float32 rounding {rounding:.1e})")
        return report
    finally:
        model.train(was_training)
