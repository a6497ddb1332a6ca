import pytest
import torch
from torch import nn

import hrnet
from hrnet.backbone import HighResolutionModule
from hrnet.export import relative_error


@pytest.mark.parametrize("size", [(64, 64), (250, 333), (97, 131)])
def test_backbone_maps_have_the_published_channels_and_ceil_strides(tiny, size):
    backbone = hrnet.HRNetBackbone(tiny).eval()
    with torch.no_grad():
        maps = backbone(torch.randn(1, 3, *size))
    assert backbone.channels == [8, 16, 32, 64] and backbone.strides == [4, 8, 16, 32]
    for x, channels, stride in zip(maps, backbone.channels, backbone.strides):
        expected = [-(-side // stride) for side in size]  # every downsampling is a padded stride-2 conv
        assert list(x.shape) == [1, channels, *expected]


def _official_style_fusion(module: HighResolutionModule, xs):
    """The official fusion: nn.Upsample by powers of two (works on multiples of 32 only)."""
    xs = [branch(x) for branch, x in zip(module.branches, xs)]
    out = []
    for i, layers in enumerate(module.fuse_layers):
        y = layers[0](xs[0])
        for j in range(1, len(xs)):
            z = layers[j](xs[j])
            if j > i:
                z = nn.Upsample(scale_factor=2 ** (j - i), mode="nearest")(z)
            y = y + z
        out.append(torch.relu(y))
    return out


def test_exact_size_nearest_fusion_is_bit_identical_to_power_of_two_upsampling(tiny):
    backbone = hrnet.HRNetBackbone(tiny).eval()
    module = backbone.stage4[0]
    xs = [torch.randn(2, c, 16 // 2**i, 24 // 2**i) for i, c in enumerate(backbone.channels)]
    with torch.no_grad():
        for ours, official in zip(module(xs), _official_style_fusion(module, xs)):
            assert torch.equal(ours, official)


def test_bilinear_fusion_differs_from_nearest_and_honours_align_corners(tiny):
    x = torch.randn(1, 3, 64, 64)
    torch.manual_seed(0)
    nearest = hrnet.HRNetBackbone(tiny).eval()
    outputs = {}
    for align in (False, True):
        model = hrnet.HRNetBackbone(tiny.replace(fuse_mode="bilinear", align_corners=align)).eval()
        model.load_state_dict(nearest.state_dict())
        with torch.no_grad():
            outputs[align] = model(x)[0]
    with torch.no_grad():
        base = nearest(x)[0]
    assert not torch.allclose(base, outputs[False]) and not torch.allclose(outputs[False], outputs[True])


def test_single_output_last_module_for_pose(tiny):
    backbone = hrnet.HRNetBackbone(tiny.replace(multi_scale_output=False))
    assert len(backbone.stage4[-1].fuse_layers) == 1
    maps = backbone(torch.randn(1, 3, 64, 64))
    assert len(maps) == 1 and backbone.channels == [8] and backbone.strides == [4]


def test_activation_checkpointing_gives_the_same_gradients(tiny):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    plain = hrnet.HRNetBackbone(tiny)
    checkpointed = hrnet.HRNetBackbone(tiny)
    checkpointed.load_state_dict(plain.state_dict())
    checkpointed.grad_checkpointing = True
    for model in (plain, checkpointed):
        sum(m.square().mean() for m in model(x)).backward()
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters()):
        assert relative_error(b.grad, a.grad) < 1e-5, name
    # The recomputation in backward leaves the BatchNorm statistics as one forward pass does.
    for (name, a), b in zip(plain.named_buffers(), checkpointed.buffers()):
        assert torch.allclose(a.float(), b.float(), rtol=1e-5, atol=1e-6), name
