"""Every registered variant with every head: forward and backward on small, odd-sized inputs."""

import pytest
import torch

import hrnet
from helpers import tiny_spec

TASKS = [("classification", None, (2, 1000)), ("pose", None, (2, 17, 17, 25)),
         ("segmentation", None, (2, 19, 17, 25)), ("segmentation", "ocr", (2, 19, 17, 25))]


def _forward_backward(arch, task, head, shape):
    torch.manual_seed(0)
    model = hrnet.create_model(arch, task=task, head=head)
    x = torch.randn(2, 3, 65, 97)  # not a multiple of 32
    out = model(x)
    outputs = out if isinstance(out, tuple) else (out,)
    assert len(outputs) == (2 if head == "ocr" else 1)
    assert all(o.shape == shape for o in outputs)
    sum(o.float().pow(2).mean() for o in outputs).backward()
    first, last = next(model.backbone.parameters()).grad, next(reversed(list(model.head.parameters()))).grad
    assert first is not None and first.abs().sum() > 0 and last.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        assert model(x).shape == shape


@pytest.mark.parametrize("task, head, shape", TASKS, ids=[f"{t}-{h}" for t, h, _ in TASKS])
@pytest.mark.parametrize("arch", ["hrnet_w18_small_v1", tiny_spec()], ids=["hrnet_w18_small_v1", "tiny"])
def test_forward_and_backward_every_task(arch, task, head, shape):
    _forward_backward(arch, task, head, shape)


@pytest.mark.parametrize("arch", hrnet.list_models())
def test_forward_and_backward_every_variant(arch):
    """The bare backbone of each variant on a small odd-sized input (heads are covered above)."""
    torch.manual_seed(0)
    backbone = hrnet.create_model(arch, task="backbone")
    maps = backbone(torch.randn(2, 3, 65, 97))
    assert [tuple(m.shape[1:]) for m in maps] == [
        (c, -(-65 // s), -(-97 // s)) for c, s in zip(backbone.channels, backbone.strides)]
    sum(m.pow(2).mean() for m in maps).backward()
    assert next(backbone.parameters()).grad.abs().sum() > 0  # the stem's first conv (Lite-HRNet: stem.conv1.conv)


@pytest.mark.slow
@pytest.mark.parametrize("task, head, shape", TASKS, ids=[f"{t}-{h}" for t, h, _ in TASKS])
@pytest.mark.parametrize("arch", hrnet.list_models())
def test_forward_and_backward_every_variant_and_task(arch, task, head, shape):
    _forward_backward(arch, task, head, shape)


def test_backbone_task_returns_the_list_of_maps():
    backbone = hrnet.create_model("hrnet_w18_small_v1", task="backbone")
    assert isinstance(backbone, hrnet.HRNetBackbone)
    assert backbone.channels == [16, 32, 64, 128] and backbone.strides == [4, 8, 16, 32]


@pytest.mark.parametrize("kwargs, message", [
    (dict(task="depth"), "unknown task 'depth'"),
    (dict(task="pose", head="ocr"), "unknown head 'ocr' for task 'pose'"),
    (dict(task="backbone", num_classes=3), "no head"),
    (dict(num_classes=0), "positive"),
    (dict(detector="faster_rcnn"), "task='detection'"),
])
def test_bad_arguments_are_named(tiny, kwargs, message):
    with pytest.raises(ValueError, match=message):
        hrnet.create_model(tiny, **kwargs)


def test_unknown_arch_and_unknown_keyword():
    with pytest.raises(ValueError, match="unknown architecture 'hrnet_w19'.*hrnet_w18"):
        hrnet.create_model("hrnet_w19")
    with pytest.raises(TypeError):
        hrnet.create_model("hrnet_w18", pretrained=True)


def test_segmentation_fuses_bilinearly_with_the_official_align_corners_defaults(tiny):
    plain = hrnet.create_model(tiny, task="segmentation")
    ocr = hrnet.create_model(tiny, task="segmentation", head="ocr")
    forced = hrnet.create_model(tiny, task="segmentation", head="ocr", align_corners=False)
    assert (plain.spec.fuse_mode, plain.spec.align_corners) == ("bilinear", False)
    assert ocr.spec.align_corners and not forced.spec.align_corners
    assert hrnet.create_model(tiny, task="classification").spec.fuse_mode == "nearest"
    assert tiny.fuse_mode == "nearest"  # the shared spec is never mutated
