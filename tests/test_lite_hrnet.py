"""Lite-HRNet as a spec of the one HRNet backbone: variants, published sizes, forward/backward, training-mode
details, activation checkpointing, ONNX export. (Parity with the official code: tests/layouts/test_lite_hrnet.py.)"""

import pytest
import torch
import torch.nn.functional as F

import hrnet
from hrnet.blocks import _bin_average
from hrnet.cli import main
from hrnet.complexity import describe
from hrnet.export import relative_error
from hrnet.spec import VARIANTS, HRNetSpec, StageSpec
from helpers import randomize_batchnorm

LITE = ["lite_hrnet_18", "lite_hrnet_30", "naive_lite_hrnet_18", "wider_naive_lite_hrnet_18"]
LITE_PREFIXES = ("lite_", "naive_", "wider_naive_")


def tiny_lite_spec(block: str = "ccw") -> HRNetSpec:
    """Widths 8/16/32/64, one block and one module per stage, a 16-wide stem."""
    ratio = 4 if block == "ccw" else None
    return VARIANTS["lite_hrnet_18"].replace(stem_channels=16, stages=tuple(
        StageSpec(modules=1, block=block, blocks=(1,) * n, channels=(8, 16, 32, 64)[:n], reduce_ratio=ratio)
        for n in (2, 3, 4)))


def test_the_variants_are_data_of_the_one_spec():
    lite = VARIANTS["lite_hrnet_18"]
    assert (lite.stem, lite.stem_channels, lite.fuse_conv, lite.fusion, lite.neck, lite.conv_init) == \
        ("shuffle", 32, "separable", "lite_hrnet", "iterative", "normal")
    assert [(s.modules, s.block, s.blocks, s.reduce_ratio) for s in lite.stages] == [
        (2, "ccw", (2, 2), 8), (4, "ccw", (2, 2, 2), 8), (2, "ccw", (2, 2, 2, 2), 8)]
    assert [s.modules for s in VARIANTS["lite_hrnet_30"].stages] == [3, 8, 3]
    assert VARIANTS["naive_lite_hrnet_18"].stages[-1] == StageSpec(modules=2, block="shuffle", blocks=(2, 2, 2, 2),
                                                                    channels=(30, 60, 120, 240))
    # The iterative neck projects each branch to the width of the one above it.
    assert lite.channels == (40, 40, 80, 160) and lite.strides == (4, 8, 16, 32)
    assert lite.replace(multi_scale_output=False).channels == (40,)
    for name, spec in VARIANTS.items():
        if not name.startswith(LITE_PREFIXES):
            assert (spec.stem, spec.fuse_conv, spec.fusion, spec.neck, spec.conv_init) == \
                ("conv", "dense", "sum", None, "kaiming"), name


# Exact counts of the official modules (backbone + the 17-joint 1x1 head; counted on the official code) and the
# published 1.1M / 1.8M / 1.3M. The README's 0.7M for naive Lite-HRNet-18 does not round from its module's 0.76M
# (truncated? the file cannot tell); the exact count is what is asserted. Multiply-adds: `describe` counts conv
# and linear layers, each conv once, as this forward pass runs them (the official one runs fuse_layers[i][0]
# twice on the same tensor; we compute it once in eval). The published FLOPs come from torchstat
# (tools/summary_network.py), which also counts BatchNorm, activations and pooling: our conv count is 0.95-0.97
# of them.
PUBLISHED = [  # arch, input, parameters, ours: conv MACs in M, published torchstat FLOPs in M
    ("lite_hrnet_18", (256, 192), 1_130_769, 198.6, 205.2),
    ("lite_hrnet_18", (384, 288), 1_130_769, 446.8, 461.6),
    ("lite_hrnet_30", (256, 192), 1_763_717, 309.5, 319.2),
    ("lite_hrnet_30", (384, 288), 1_763_717, 696.0, 717.8),
    ("naive_lite_hrnet_18", (256, 192), 760_365, 185.5, 194.8),
    ("wider_naive_lite_hrnet_18", (256, 192), 1_318_625, 302.3, 311.1),
]


@pytest.mark.parametrize("arch, size, params, macs, flops", PUBLISHED)
def test_published_parameter_counts_and_multiply_adds(arch, size, params, macs, flops):
    result = describe(arch, task="pose", input_size=size)
    assert result.params == params
    assert round(result.params / 1e6, 1) == {"lite_hrnet_18": 1.1, "lite_hrnet_30": 1.8, "naive_lite_hrnet_18": 0.8,
                                              "wider_naive_lite_hrnet_18": 1.3}[arch]  # naive: README 0.7M
    assert round(result.macs / 1e6, 1) == macs
    assert 0.94 < result.macs / (flops * 1e6) < 0.98


def test_the_mpii_head_has_16_joints():
    assert describe("lite_hrnet_18", task="pose", num_classes=16, input_size=(256, 256)).params == 1_130_072 + 656


@pytest.mark.parametrize("arch", LITE)
def test_forward_and_backward_every_variant_on_an_odd_input(arch):
    torch.manual_seed(0)
    model = hrnet.create_model(arch, task="pose")
    x = torch.randn(2, 3, 65, 97)  # the official code needs multiples of 32; every size works here
    out = model(x)
    assert out.shape == (2, 17, 17, 25)
    out.pow(2).mean().backward()
    assert model.backbone.stem.conv1.conv.weight.grad.abs().sum() > 0
    assert model.head.final_layer.weight.grad.abs().sum() > 0
    backbone = hrnet.create_model(arch, task="backbone").eval()
    with torch.no_grad():
        maps = backbone(x)
    assert [tuple(m.shape[1:]) for m in maps] == [
        (c, -(-65 // s), -(-97 // s)) for c, s in zip(backbone.channels, backbone.strides)]


def test_training_runs_the_fusion_path_from_branch_0_twice_as_the_official_code():
    """Its BatchNorm statistics update twice per step: trained official checkpoints have counters 2x the others."""
    model = hrnet.create_model(tiny_lite_spec(), task="pose").train()
    model(torch.randn(2, 3, 64, 64))
    module = model.backbone.stage3[0]
    assert int(module.fuse_layers[1][0][0][1].num_batches_tracked) == 2  # dw BN of branch 0 -> 1
    assert int(module.fuse_layers[2][0][1][3].num_batches_tracked) == 2
    assert int(module.fuse_layers[0][1][1].num_batches_tracked) == 1
    assert int(module.fuse_layers[2][1][0][1].num_batches_tracked) == 1


@pytest.mark.parametrize("block", ["ccw", "shuffle"])
def test_activation_checkpointing_gives_the_same_gradients_and_statistics(block):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 96)
    plain = hrnet.create_model(tiny_lite_spec(block), task="pose")
    checkpointed = hrnet.create_model(tiny_lite_spec(block), task="pose")
    checkpointed.load_state_dict(plain.state_dict())
    checkpointed.backbone.grad_checkpointing = True
    for model in (plain, checkpointed):
        model(x).square().mean().backward()
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters()):
        assert relative_error(b.grad, a.grad) < 1e-5, name
    for (name, a), b in zip(plain.named_buffers(), checkpointed.buffers()):
        assert torch.allclose(a.float(), b.float(), rtol=1e-5, atol=1e-6), name


def test_convs_start_as_lite_hrnets_and_hrnets_stay_kaiming():
    lite = hrnet.create_model("lite_hrnet_18", task="pose")
    stds = [m.weight.std().item() for m in lite.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.numel() > 100]
    assert max(stds) < 0.0015  # N(0, 0.001), biases 0 (official init_weights)
    assert lite.backbone.stage2[0].layers[0].spatial_weighting[0].conv1.conv.bias.abs().sum() == 0
    hrnet_conv = hrnet.create_model("hrnet_w18_small_v1", task="pose").backbone.conv1.weight
    assert hrnet_conv.std() > 0.05  # kaiming fan-out: sqrt(2 / (16 * 9))


@pytest.mark.parametrize("kwargs, message", [
    (dict(modules=1, block="ccw", blocks=(2, 2), channels=(8, 16)), "reduce_ratio must be a positive integer"),
    (dict(modules=1, block="ccw", blocks=(2, 1), channels=(8, 16), reduce_ratio=8), "same count"),
    (dict(modules=1, block="ccw", blocks=(1, 1), channels=(6, 16), reduce_ratio=2), "too narrow"),
    (dict(modules=1, block="shuffle", blocks=(1, 1), channels=(9, 16)), "must be even"),
    (dict(modules=1, block="basic", blocks=(1, 1), channels=(8, 16), reduce_ratio=8), "block 'ccw' only"),
])
def test_lite_stage_specs_reject_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StageSpec(**kwargs)


@pytest.mark.parametrize("changes, message", [
    (dict(stem="ghost"), "HRNetSpec.stem must be one of"),
    (dict(fuse_conv="grouped"), "HRNetSpec.fuse_conv"),
    (dict(fusion="concat"), "HRNetSpec.fusion"),
    (dict(neck="fpn"), "HRNetSpec.neck"),
    (dict(conv_init="xavier"), "HRNetSpec.conv_init"),
    (dict(stem_channels=15), "even for stem 'shuffle'"),
])
def test_lite_spec_fields_reject_bad_values(changes, message):
    with pytest.raises(ValueError, match=message):
        VARIANTS["lite_hrnet_18"].replace(**changes)


def test_stage_1_and_its_absence_are_checked():
    lite = VARIANTS["lite_hrnet_18"]
    with pytest.raises(ValueError, match="needs 4 stages .* or 3 .* got 2"):
        lite.replace(stages=lite.stages[1:])
    with pytest.raises(ValueError, match="stage 1 is one residual layer"):
        lite.replace(stages=(StageSpec(modules=1, block="shuffle", blocks=(1,), channels=(32,)), *lite.stages))
    # An HRNet stage 1 before Lite-HRNet stages is a valid architecture.
    mixed = lite.replace(stages=(StageSpec(modules=1, block="bottleneck", blocks=(1,), channels=(8,)), *lite.stages))
    assert hrnet.create_model(mixed, task="backbone").layer1[0].conv3.out_channels == 32


def test_the_export_pooling_bins_are_adaptive_poolings():
    x = torch.randn(2, 3, 21, 17, dtype=torch.float64)
    for size in ((3, 3), (11, 9), (6, 5), (21, 17), (1, 1)):
        rows, cols = _bin_average(21, size[0], x), _bin_average(17, size[1], x)
        assert torch.allclose(rows @ x @ cols.T, F.adaptive_avg_pool2d(x, size), rtol=0, atol=1e-12)


# torch.export of Lite-HRNet's many small ops takes about a minute even on a tiny model: `slow`.
@pytest.mark.parametrize("exporter", ["torchscript", pytest.param("dynamo", marks=pytest.mark.slow)])
def test_onnx_export_matches_pytorch_at_two_sizes(tmp_path, exporter):
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = hrnet.create_model(tiny_lite_spec("ccw"), task="pose", num_classes=5)
    for module in model.modules():  # weights away from the N(0, 0.001) start, so that the check means something
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight)
    randomize_batchnorm(model)
    report = hrnet.export_onnx(model, tmp_path / "lite.onnx", input_size=(64, 96), exporter=exporter)
    assert [shape for shape, _, _ in report.checks] == [(2, 3, 64, 96), (1, 3, 81, 127)]  # 81x127: not /32
    assert all(error < 1e-4 for _, error, _ in report.checks)


@pytest.mark.slow
def test_onnx_export_of_lite_hrnet_18(tmp_path):
    pytest.importorskip("onnxruntime")
    model = randomize_batchnorm(hrnet.create_model("lite_hrnet_18", task="pose"))
    report = hrnet.export_onnx(model, tmp_path / "lite18.onnx", input_size=(256, 192))
    assert all(error < 1e-4 for _, error, _ in report.checks)


def test_the_command_line_describes_lite_hrnet(capsys):
    assert set(LITE) <= set(hrnet.list_models())  # `hrnet list` prints these
    assert main(["info", "lite_hrnet_30", "--task", "pose", "--input", "256x192"]) == 0
    out = capsys.readouterr().out
    assert "1.8M (1,763,717)" in out and "0.29 G (official" in out
