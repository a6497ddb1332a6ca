"""ONNX export: dynamic batch/height/width, onnxruntime within 1e-4 relative of PyTorch at two sizes."""

import pytest
import torch

import hrnet
from hrnet.export import check_onnx
from helpers import OFFICIAL, tiny_spec

pytest.importorskip("onnxruntime")

CASES = {"cls_tiny": dict(task="classification"), "pose_tiny": dict(task="pose"),
         "seg_ocr_tiny": dict(task="segmentation", head="ocr")}


def _model(name):
    """The official fixture (realistic BatchNorm statistics) when present, else a seeded tiny model."""
    checkpoint = OFFICIAL / f"{name}.pth"
    if checkpoint.is_file():
        spec = hrnet.HRNetSpec.from_official(__import__("json").loads((OFFICIAL / f"{name}.json").read_text())["spec"])
        return hrnet.create_model(spec, checkpoint=checkpoint, **CASES[name])
    torch.manual_seed(0)
    return hrnet.create_model(tiny_spec(), num_classes=7, **CASES[name])


# torch.export (the default exporter) takes ~30 s per tiny model here: the default run checks it on one
# task and the fast TorchScript tracer on every task; the rest of the dynamo grid is `slow`.
EXPORTER_CASES = [(name, "torchscript") for name in sorted(CASES)] + [
    pytest.param(name, "dynamo", marks=[] if index == 0 else [pytest.mark.slow])
    for index, name in enumerate(sorted(CASES))]


@pytest.mark.parametrize(("name", "exporter"), EXPORTER_CASES)
def test_onnx_matches_pytorch_at_two_input_sizes(name, exporter, tmp_path):
    model = _model(name)
    report = hrnet.export_onnx(model, tmp_path / "model.onnx", input_size=(64, 96), exporter=exporter)
    assert [shape for shape, _, _ in report.checks] == [(2, 3, 64, 96), (1, 3, 81, 127)]
    assert all(error < 1e-4 for _, error, _ in report.checks)
    assert model.training  # the caller's mode is restored
    # A third size and batch, never seen during export: the graph is really dynamic.
    (shape, error, _), = check_onnx(model.eval(), tmp_path / "model.onnx", [(3, 3, 128, 64)])
    assert error < 1e-4
