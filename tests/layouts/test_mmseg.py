"""mmsegmentation FCN-HRNet and OCRNet-HRNet checkpoints load and give mmseg's logits.

Key names and shapes come from mmsegmentation: `mmseg/models/backbones/hrnet.py` (the official backbone
names), `decode_heads/fcn_head.py` + `configs/_base_/models/fcn_hr18.py` (FCN: `convs.0.{conv,bn}` with no conv
bias, `conv_seg`, resize_concat with align_corners=False) and `decode_heads/ocr_head.py`,
`utils/self_attention_block.py`, `configs/_base_/models/ocrnet_hr18.py` (OCR cascade). The expected logits are
computed in this file from the raw tensors with torch.nn.functional, following those files.
"""

import pytest
import torch
import torch.nn.functional as F

import hrnet
from hrnet.checkpoints import official_key
from hrnet.export import relative_error
from helpers import bn_eval, random_bn, randomize_batchnorm, tiny_spec

CLASSES = 5


def _mmseg_backbone(generator_seed: int):
    """A random HRNet backbone as mmseg builds it: bilinear fusion, align_corners=False."""
    torch.manual_seed(generator_seed)
    backbone = hrnet.create_model(tiny_spec().replace(fuse_mode="bilinear", align_corners=False), task="backbone")
    return randomize_batchnorm(backbone, generator_seed).eval()


def _resize_concat(features):
    size = features[0].shape[-2:]
    return torch.cat([F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in features], dim=1)


def _conv_module(x, state, prefix, padding=0):
    """mmcv ConvModule (conv without bias, BN, ReLU) from raw tensors."""
    return F.relu(bn_eval(F.conv2d(x, state[prefix + "conv.weight"], padding=padding), state, prefix + "bn."))


def _fcn_tensors(prefix, channels, generator):
    state = {prefix + "convs.0.conv.weight": torch.randn(channels, channels, 1, 1, generator=generator) * 0.1,
             **random_bn(prefix + "convs.0.bn.", channels, generator),
             prefix + "conv_seg.weight": torch.randn(CLASSES, channels, 1, 1, generator=generator) * 0.1,
             prefix + "conv_seg.bias": torch.randn(CLASSES, generator=generator)}
    return state


def _fcn_forward(features, state, prefix):
    x = _conv_module(_resize_concat(features), state, prefix + "convs.0.")
    return F.conv2d(x, state[prefix + "conv_seg.weight"], state[prefix + "conv_seg.bias"])


def _save(path, backbone, head_state):
    state = {"backbone." + k: v for k, v in backbone.state_dict().items()}
    torch.save({"meta": {"mmseg_version": "1.2.2", "CLASSES": [f"c{i}" for i in range(CLASSES)]},
                "state_dict": {**state, **head_state}}, path)
    return path


def test_fcn_hrnet_reproduces_mmseg_logits(tmp_path):
    backbone = _mmseg_backbone(0)
    channels = sum(backbone.channels)
    head = _fcn_tensors("decode_head.", channels, torch.Generator().manual_seed(1))
    path = _save(tmp_path / "fcn_hr18.pth", backbone, head)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected = _fcn_forward(backbone(x), head, "decode_head.")
        model = hrnet.create_model(tiny_spec(), task="segmentation", checkpoint=path).eval()
        assert relative_error(model(x), expected) < 1e-5
    assert not model.spec.align_corners and model.spec.fuse_mode == "bilinear"
    assert model.head.last_layer[0].bias is None
    assert any("mmsegmentation FCN-HRNet" in note for note in model.load_report.notes)


def _ocr_tensors(total, generator, mid=16, key=8):
    def conv(o, i, k=1):
        return torch.randn(o, i, k, k, generator=generator) * (1.0 / (i * k * k)) ** 0.5

    p = "decode_head.1."
    block = p + "object_context_block."
    state = {**_fcn_tensors("decode_head.0.", total, generator),
             p + "bottleneck.conv.weight": conv(mid, total, 3), **random_bn(p + "bottleneck.bn.", mid, generator),
             p + "conv_seg.weight": conv(CLASSES, mid), p + "conv_seg.bias": torch.randn(CLASSES, generator=generator)}
    for name in ("query_project", "key_project"):
        for i, c_in in enumerate((mid, key)):
            state[f"{block}{name}.{i}.conv.weight"] = conv(key, c_in)
            state.update(random_bn(f"{block}{name}.{i}.bn.", key, generator))
    state[block + "value_project.conv.weight"] = conv(key, mid)
    state.update(random_bn(block + "value_project.bn.", key, generator))
    state[block + "out_project.conv.weight"] = conv(mid, key)
    state.update(random_bn(block + "out_project.bn.", mid, generator))
    state[block + "bottleneck.conv.weight"] = conv(mid, 2 * mid)
    state.update(random_bn(block + "bottleneck.bn.", mid, generator))
    return state


def _ocr_forward(features, state, key=8):
    """CascadeEncoderDecoder at test: decode_head.0 (FCN) logits feed decode_head.1 (OCRHead)."""
    p, block = "decode_head.1.", "decode_head.1.object_context_block."
    aux = _fcn_forward(features, state, "decode_head.0.")
    feats = _conv_module(_resize_concat(features), state, p + "bottleneck.", padding=1)
    n, c, h, w = feats.shape
    probs = F.softmax(aux.flatten(2), dim=2)  # SpatialGatherModule: softmax over pixels
    context = (probs @ feats.flatten(2).transpose(1, 2)).permute(0, 2, 1).unsqueeze(3)  # (N, C, K, 1)

    def project(x, name, depth):
        for i in range(depth):
            x = _conv_module(x, state, f"{block}{name}.{i}." if depth > 1 else f"{block}{name}.")
        return x

    query = project(feats, "query_project", 2).flatten(2).transpose(1, 2)
    keys = project(context, "key_project", 2).flatten(2)
    value = project(context, "value_project", 1).flatten(2).transpose(1, 2)
    sim = F.softmax(key ** -0.5 * (query @ keys), dim=-1)
    attended = project((sim @ value).transpose(1, 2).reshape(n, key, h, w), "out_project", 1)
    out = _conv_module(torch.cat([attended, feats], dim=1), state, block + "bottleneck.")
    return aux, F.conv2d(out, state[p + "conv_seg.weight"], state[p + "conv_seg.bias"])


def test_ocrnet_hrnet_reproduces_mmseg_logits(tmp_path):
    backbone = _mmseg_backbone(2)
    head = _ocr_tensors(sum(backbone.channels), torch.Generator().manual_seed(3))
    path = _save(tmp_path / "ocrnet_hr18.pth", backbone, head)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        aux, main = _ocr_forward(backbone(x), head)
        model = hrnet.create_model(tiny_spec(), task="segmentation", head="ocr", checkpoint=path).eval()
        ours_aux, ours_main = model.forward_all(x)
    assert relative_error(ours_main, main) < 1e-5 and relative_error(ours_aux, aux) < 1e-5
    assert model.head.conv3x3_ocr[0].bias is None and model.head.aux_head[0].bias is None
    assert not model.spec.align_corners
    assert model.head.ocr_distri_head.object_context_block.key_channels == 8  # ocr_channels read from the file


def test_load_checkpoint_into_a_default_model_fills_the_absent_biases_with_zeros(tmp_path):
    """An existing model (official head with conv bias) takes an mmseg file exactly: a zero bias is no bias."""
    backbone = _mmseg_backbone(4)
    head = _fcn_tensors("decode_head.", sum(backbone.channels), torch.Generator().manual_seed(5))
    path = _save(tmp_path / "fcn.pth", backbone, head)
    model = hrnet.create_model(tiny_spec(), task="segmentation", num_classes=CLASSES, align_corners=False).eval()
    report = hrnet.load_checkpoint(model, path)
    assert model.head.last_layer[0].bias.abs().max() == 0
    assert any("zero" in note for note in report.notes)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert relative_error(model(x), _fcn_forward(backbone(x), head, "decode_head.")) < 1e-5


def test_the_wrong_head_is_an_error_not_a_random_head(tmp_path):
    backbone = _mmseg_backbone(6)
    head = _fcn_tensors("decode_head.", sum(backbone.channels), torch.Generator().manual_seed(7))
    path = _save(tmp_path / "fcn.pth", backbone, head)
    with pytest.raises(hrnet.CheckpointError, match=r"mmsegmentation FCN-HRNet: build the model with the default head"):
        hrnet.create_model(tiny_spec(), task="segmentation", head="ocr", checkpoint=path)


def test_keys_are_mmsegs_official_names():
    """mmseg registers the official backbone names (build_norm_layer gives bn1, ...): the converted keys are
    exactly the model's."""
    backbone = _mmseg_backbone(8)
    names = [official_key("backbone." + k) for k in backbone.state_dict()]
    assert names[:4] == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean"]
