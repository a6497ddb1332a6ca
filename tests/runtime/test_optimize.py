"""The eager fast path: BatchNorm folding, channels-last, autocast, torch.compile; each within its
stated tolerance of the unoptimised model (hrnet.runtime.TORCH_TOLERANCES), the original untouched."""

import pytest
import torch
from torch import nn

import hrnet
from hrnet.detectors import build_detector
from hrnet.export import flat_outputs, relative_error
from hrnet.runtime import TORCH_TOLERANCES, fuse, load_runtime, model_device, optimize
from helpers import randomize_batchnorm, tiny_spec

CASES = {
    "classification": dict(task="classification", num_classes=7),
    "pose": dict(task="pose", num_classes=5),
    "segmentation": dict(task="segmentation", num_classes=5),
    "segmentation_ocr": dict(task="segmentation", head="ocr", num_classes=5),
}


def _model(name):
    torch.manual_seed(0)
    return randomize_batchnorm(hrnet.create_model(tiny_spec(), **CASES[name])).eval()


def _norms(model):
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def _folded_reference(conv: nn.Conv2d, bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """bn(conv(x)) in eval mode, written out: (conv(x) - mean) / sqrt(var + eps) * gamma + beta."""
    y = nn.functional.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding)
    shape = (1, -1, 1, 1)
    return ((y - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + bn.eps)
            * bn.weight.view(shape) + bn.bias.view(shape))


def test_folding_formula_matches_conv_then_batchnorm():
    torch.manual_seed(1)
    model = randomize_batchnorm(nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, bias=True), nn.BatchNorm2d(6))).eval()
    x = torch.randn(2, 3, 9, 11)
    fused = fuse(model, example=x)
    assert fused.fused_pairs == [("0", "1")] and isinstance(fused[1], nn.Identity)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), _folded_reference(model[0], model[1], x), atol=1e-5, rtol=1e-5)


def test_a_conv_read_twice_is_not_folded():
    class Branching(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y  # the raw conv output is needed too: folding would change it

    model = randomize_batchnorm(Branching()).eval()
    fused = fuse(model, example=torch.randn(1, 3, 8, 8))
    assert fused.fused_pairs == [] and isinstance(fused.bn, nn.BatchNorm2d)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fused_channels_last_matches_the_model(name):
    model = _model(name)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    fast = optimize(model, channels_last=True)
    assert _norms(model) > 0 and _norms(fast) == 0  # every BatchNorm of HRNet and its heads folds
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())  # the original is untouched
    for shape in [(2, 3, 64, 96), (1, 3, 81, 127)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            assert relative_error(fast(x), model(x)) <= TORCH_TOLERANCES["fp32"]


@pytest.mark.parametrize("dtype, precision", [(torch.bfloat16, "bf16"), (torch.float16, "fp16")])
def test_autocast_precisions_within_their_tolerance(dtype, precision):
    model = _model("pose")
    fast = optimize(model, dtype=dtype)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        out = fast(x)
        assert out.dtype == torch.float32 and relative_error(out, model(x)) <= TORCH_TOLERANCES[precision]
    via_runtime = load_runtime(model, runtime="torch", precision=precision)
    with torch.no_grad():
        assert relative_error(via_runtime(x), model(x)) <= TORCH_TOLERANCES[precision]


def test_detector_optimizes_its_backbone_only():
    torch.manual_seed(0)
    detector = build_detector(tiny_spec(), num_classes=3, fpn_channels=16, representation_size=32, min_size=96,
                              max_size=128, box_score_thresh=0.0).eval()
    randomize_batchnorm(detector.backbone)
    fast = optimize(detector, channels_last=True)
    assert _norms(fast.backbone) == 0 and _norms(detector.backbone) > 0
    assert model_device(fast) == torch.device("cpu")
    images = [torch.rand(3, 90, 120)]
    with torch.no_grad():
        want, got = detector(images)[0], fast(images)[0]
    torch.testing.assert_close(got["boxes"], want["boxes"], atol=1e-2, rtol=0)
    torch.testing.assert_close(got["scores"], want["scores"], atol=1e-4, rtol=0)


@pytest.mark.slow
def test_compiled_matches_the_model():
    model = _model("classification")
    fast = optimize(model, compile=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert relative_error(flat_outputs(fast(x))[0], model(x)) <= TORCH_TOLERANCES["fp32"]


def test_unknown_dtype_is_a_config_error():
    with pytest.raises(hrnet.errors.ConfigError, match="float16 or torch.bfloat16"):
        optimize(_model("pose"), dtype=torch.float64)
