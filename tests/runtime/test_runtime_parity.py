"""Each runtime against eager PyTorch, for every task, at two input sizes, per precision.

fp32 (onnxruntime, OpenVINO): relative error (max |a - b| / max |b|) <= 1e-4 at both sizes.
int8: the outputs follow eager float32 (correlation >= 0.97) and the task's decision mostly agrees
(top-1 class / pixel class / heatmap peak), on images the calibration never saw.
One export per model (module-scoped cache folder) serves both runtimes and both sizes.
"""

from collections import OrderedDict

import pytest
import torch

import hrnet
from hrnet.detectors import build_detector
from hrnet.engine.testing import make_synthetic_folder
from hrnet.export import flat_outputs, relative_error
from hrnet.runtime import load_runtime, model_device
from hrnet.runtime.calibration import calibration_batches
from hrnet.runtime.parity import agreement, correlation
from helpers import randomize_batchnorm, tiny_spec

pytest.importorskip("onnxruntime")
RUNTIMES = ["onnxruntime", pytest.param("openvino", marks=pytest.mark.skipif(
    __import__("importlib").util.find_spec("openvino") is None, reason="openvino is not installed"))]
SIZES = [(2, 64, 96), (1, 81, 127)]  # (N, H, W): the second is odd, never traced
CASES = {
    "classification": dict(task="classification", num_classes=7),
    "pose": dict(task="pose", num_classes=5),
    "segmentation": dict(task="segmentation", num_classes=5),
    "segmentation_ocr": dict(task="segmentation", head="ocr", num_classes=5),
    "detection_backbone": None,
}


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if CASES[name] is None:
        return randomize_batchnorm(build_detector(tiny_spec(), num_classes=3, fpn_channels=16,
                                                  representation_size=32).backbone).eval()
    return randomize_batchnorm(hrnet.create_model(tiny_spec(), **CASES[name])).eval()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """(calibration folder, held-out folder) of synthetic stripe images."""
    root = tmp_path_factory.mktemp("images")
    return make_synthetic_folder(root / "calib", per_class=4, size=96, seed=0), \
        make_synthetic_folder(root / "held_out", per_class=4, size=96, seed=5)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """name -> (model, cache folder): each model exported once for the whole module."""
    root = tmp_path_factory.mktemp("exports")
    return {name: (_model(name), root / name) for name in CASES}


def _task(name: str) -> str:
    return "segmentation" if name.startswith("segmentation") else name.split("_")[0]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_fp32_matches_eager_at_two_sizes(name, runtime, exports):
    model, cache = exports[name]
    fast = load_runtime(model, runtime=runtime, cache=cache)
    assert model_device(fast) == torch.device("cpu") and fast.report.passed
    generator = torch.Generator().manual_seed(1)
    for n, h, w in SIZES:
        x = torch.randn(n, 3, h, w, generator=generator)
        with torch.no_grad():
            want, got = model(x), fast(x)
        if isinstance(want, dict):
            assert isinstance(got, OrderedDict) and list(got) == list(want)
        for a, b in zip(flat_outputs(got), flat_outputs(want), strict=True):
            assert a.shape == b.shape and a.dtype == torch.float32
            assert relative_error(a, b) <= 1e-4, (name, runtime, (n, h, w))


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("name", ["classification", "pose", "segmentation", "segmentation_ocr"])
def test_int8_follows_eager_on_held_out_images(name, runtime, exports, images):
    model, cache = exports[name]
    calibration, held_out = images
    task = _task(name)
    size = (64, 64) if task == "classification" else (64, 96)
    if task == "classification":
        # A random head gives every stripe image nearly the same logits (ties everywhere): judge the
        # classifier on varied inputs instead (calibration_batches itself is tested in test_runtime_cache).
        generator = torch.Generator().manual_seed(3)
        batches = [torch.randn(4, 3, *size, generator=generator) for _ in range(2)]
        x = torch.randn(16, 3, *size, generator=generator)
    else:
        batches = calibration_batches(task, calibration, input_size=size)
        x = torch.cat(calibration_batches(task, held_out, input_size=size))
    fast = load_runtime(model, runtime=runtime, precision="int8", cache=cache, calibration=batches)
    report = fast.report
    assert report.fp32_ops is not None and report.calibration_batches == 2
    with torch.no_grad():
        want, got = model(x), fast(x)
    assert got.shape == want.shape
    assert correlation(got, want) >= 0.97, (name, runtime)
    if task == "classification":
        # Near ties flip under any rounding: judge top-1 where eager's margin is clear (5% of the range).
        top2 = want.topk(2, dim=1).values
        clear = (top2[:, 0] - top2[:, 1]) > 0.05 * (want.max() - want.min())
        assert clear.sum() >= 2 and agreement(got[clear], want[clear], task) >= 0.75
    else:
        assert agreement(got, want, task) >= 0.6, (name, runtime)
    # A second size works too (the QDQ export keeps dynamic H and W).
    x = torch.randn(1, 3, 81, 127)
    with torch.no_grad():
        assert fast(x).shape == model(x).shape


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_detector_keeps_heads_in_torch_and_detects_the_same(runtime, exports, tmp_path):
    torch.manual_seed(0)
    detector = build_detector(tiny_spec(), num_classes=3, fpn_channels=16, representation_size=32, min_size=96,
                              max_size=128, box_score_thresh=0.0).eval()
    randomize_batchnorm(detector.backbone)
    fast = load_runtime(detector, runtime=runtime, cache=tmp_path)
    assert fast.backbone is not detector.backbone and fast.roi_heads is not detector.roi_heads
    assert type(fast.rpn) is type(detector.rpn) and fast.backbone.out_channels == 16
    assert model_device(fast) == torch.device("cpu")
    images = [torch.rand(3, 90, 120, generator=torch.Generator().manual_seed(2)), torch.rand(3, 70, 100)]
    with torch.no_grad():
        want, got = detector(images), fast(images)
    for a, b in zip(got, want):
        assert a["boxes"].shape == b["boxes"].shape
        torch.testing.assert_close(a["boxes"], b["boxes"], atol=1e-2, rtol=0)
        torch.testing.assert_close(a["scores"], b["scores"], atol=1e-4, rtol=0)
        assert torch.equal(a["labels"], b["labels"])
