"""Every (source, layout, task, head) combination of the registry loads through
`create_model(arch, weights=...)`: a synthetic file in that exact layout, served on 127.0.0.1,
downloads, hash-checks and gives the outputs of the model it was written from.

The files are written here from a reference model by each publisher's key layout:
official / timm (`cls_hrnet.py`, `pose_hrnet.py`, `seg_hrnet(_ocr).py` behind FullModel's `model.`,
timm `hrnet.py` as safetensors), mmpose 0.x / 1.x (`keypoint_head.` / `head.` + `data_preprocessor`),
Lite-HRNet (`models/backbones/litehrnet.py`: stage0-2, transition0-2, head_layer.projects),
HigherHRNet official / FP16 (`1.` prefix, float16) / mmpose 0.x (`keypoint_head.final_layers`),
mmsegmentation FCN / OCRNet (`decode_head.*`, ConvModules without bias), mmdetection 2.x (`neck.*.conv`,
`roi_head.*`, background last) and HRNet-Object-Detection (`neck.reduction_conv.0`, `bbox_head.*`).
"""

from __future__ import annotations

import re

import pytest
import torch

import hrnet
from hrnet.checkpoints import read_checkpoint
from hrnet.layouts import by_name, mmdet, mmseg
from hrnet.layouts.official import official_key
from helpers import randomize_batchnorm

TINY = "hrnet_tiny"
COMBOS = sorted({(w.source, w.layout, w.task, w.head) for w in hrnet.list_weights(available=True)}, key=str)


def _first(combo) -> hrnet.Weights:
    return next(w for w in hrnet.list_weights(available=True) if (w.source, w.layout, w.task, w.head) == combo)


def _invert(state: dict, rules) -> dict:
    """Library keys -> a publisher's, through a layout's (publisher prefix, library prefix) rules."""
    out = {}
    for key, value in state.items():
        matches = [(old, new) for old, new in rules if key.startswith(new)]
        old, new = max(matches, key=lambda rule: len(rule[1])) if matches else ("", "")
        out[old + key[len(new):]] = value
    return out


def _official(state):
    return {official_key(k): v for k, v in state.items()}


def _lite_hrnet(state):
    """This library's Lite-HRNet keys -> the official / mmpose 0.x ones (lite_hrnet.py's key map, inverted)."""
    parts = {"0": "depthwise_conv.conv", "1": "depthwise_conv.bn", "2": "pointwise_conv.conv", "3": "pointwise_conv.bn"}
    out = {}
    for key, value in state.items():
        key = re.sub(r"^backbone\.neck\.projects\.(\d+)\.(\d)\.",
                     lambda m: f"backbone.head_layer.projects.{m.group(1)}.{parts[m.group(2)]}.", key)
        key = re.sub(r"^backbone\.transition(\d+)\.", lambda m: f"backbone.transition{int(m.group(1)) - 1}.", key)
        key = re.sub(r"^backbone\.stage(\d+)\.", lambda m: f"backbone.stage{int(m.group(1)) - 2}.", key)
        out[re.sub(r"^head\.", "keypoint_head.", key)] = value
    return {"meta": {"mmpose_version": "0.29.0"}, "state_dict": out}


def _conv_module_biases(rules) -> list[str]:
    """Library bias keys of mmcv ConvModules followed by a norm: mmseg saves no conv bias there."""
    return [new + "bias" for old, new in rules if old.endswith("conv.")]


def _mmseg(state, reference, head):
    rules = mmseg.OCR_RULES if head == "ocr" else mmseg._fcn_rules("decode_head.", "head.last_layer.")
    for key in _conv_module_biases(rules):
        if key in state:
            reference.state_dict()[key].zero_()  # the same function as no bias
            del state[key]
    return {"meta": {"mmseg_version": "1.2.2"}, "state_dict": _invert(state, rules)}


def _mmdet(state, reference):
    """torchvision order -> mmdetection 2.x: background last; no background rows in fc_reg / mask logits
    (the reference's are zeroed: loading fills them with zeros)."""
    own = reference.state_dict()
    for key, rows in (("roi_heads.box_predictor.bbox_pred.", 4), ("roi_heads.mask_predictor.mask_fcn_logits.", 1)):
        for suffix in ("weight", "bias"):
            if key + suffix in state:
                own[key + suffix][:rows].zero_()
                state[key + suffix] = state[key + suffix][rows:]
    for key in ("roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.cls_score.bias"):
        state[key] = torch.cat([state[key][1:], state[key][:1]])
    return {"meta": {"mmdet_version": "3.3.0"}, "state_dict": _invert(state, mmdet.V2_RULES)}


def _publisher_file(entry, reference):
    """(object to save, suffix) of the reference's weights in the entry's layout."""
    state = {k: v.clone() for k, v in reference.state_dict().items()}
    layout = entry.layout
    if layout == "official":
        state = _official(state)
        if entry.task == "segmentation":  # FullModel(model, loss).state_dict()
            state = {"model." + k: v for k, v in state.items()} | {"loss.criterion.weight": torch.ones(19)}
        return state, ".safetensors" if entry.source == "timm" else ".pth"
    if layout in ("mmpose-0.x", "mmpose-0.x-higher-hrnet"):
        renamed = {re.sub(r"^head\.", "keypoint_head.", k): v for k, v in state.items()}
        return {"meta": {}, "state_dict": renamed}, ".pth"
    if layout == "mmpose-1.x":
        state |= {"data_preprocessor.mean": torch.tensor([123.675, 116.28, 103.53]).view(-1, 1, 1),
                  "data_preprocessor.std": torch.tensor([58.395, 57.12, 57.375]).view(-1, 1, 1)}
        return {"meta": {}, "state_dict": state}, ".pth"
    if layout == "lite-hrnet":
        return _lite_hrnet(state), ".pth"
    if layout == "higher-hrnet":
        return _official(state), ".pth"
    if layout == "higher-hrnet-fp16":
        own = reference.state_dict()
        for key, value in own.items():  # the reference computes with the float16-rounded weights
            if value.is_floating_point() and value.dim() == 4:
                value.copy_(value.half().float())
        return {"1." + official_key(k): (v.half() if v.is_floating_point() and v.dim() == 4 else v)
                for k, v in own.items()}, ".pth"
    if layout in ("mmseg-fcn", "mmseg-ocr"):
        return _mmseg(state, reference, entry.head), ".pth"
    if layout == "mmdet":
        return _mmdet(state, reference), ".pth"
    if layout == "hrnet-object-detection":
        return {"meta": {}, "state_dict": _invert(state, mmdet.V1_RULES)}, ".pth"
    pytest.fail(f"no synthetic file for layout {layout!r} ({entry.name}): add its key layout to this test")


def _reference(entry, arch):
    torch.manual_seed(0)
    if entry.task == "detection":  # torchvision's initialisation already spreads the scores (no ties)
        from hrnet.detectors import build_detector  # with the base anchors the publisher's RPN was trained with

        anchors = by_name(entry.layout).implies.get("anchors", "torchvision")
        model = build_detector(arch, num_classes=entry.num_classes, detector=entry.head, anchors=anchors)
        return randomize_batchnorm(model).eval()
    model = hrnet.create_model(arch, task=entry.task, head=entry.head, num_classes=entry.num_classes,
                               align_corners=entry.align_corners if entry.task == "segmentation" else None)
    for param in model.parameters():  # heads start near zero: make every weight matter
        param.data.add_(torch.randn_like(param) * 0.01)
    return randomize_batchnorm(model).eval()


def _save(obj, path):
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in obj.items()}, str(path))
    else:
        torch.save(obj, path)


def _outputs(model, entry):
    torch.manual_seed(1)
    if entry.task == "detection":
        # A fast check: not 800 x 1333 pixels, 1000 proposals and 100 masks.
        model.transform.min_size, model.transform.max_size = (96,), 128
        model.rpn._post_nms_top_n["testing"], model.roi_heads.detections_per_img = 100, 10
        return model([torch.rand(3, 96, 128)])[0]
    return model(torch.randn(2, 3, 64, 64))


@pytest.mark.parametrize("combo", COMBOS, ids=["/".join(map(str, c)) for c in COMBOS])
def test_every_registry_combination_downloads_and_loads(combo, server, cache, tiny_arch, repoint, hashes):
    root, base, _ = server
    entry = _first(combo)
    arch = entry.arch if "lite_hrnet" in entry.arch else tiny_arch
    reference = _reference(entry, arch)
    obj, suffix = _publisher_file(entry, reference)
    path = root / f"{entry.tag}{suffix}"
    _save(obj, path)
    assert read_checkpoint(path).layout.name == entry.layout  # the file is in the entry's layout
    served = repoint(entry, path, base, arch=arch, use_sha256=entry.source == "timm")
    model = hrnet.create_model(arch, weights=served).eval()
    assert model.weights is served and served.cache_path.is_file()
    own, loaded = reference.state_dict(), model.state_dict()
    # A layout without conv biases builds a model without them: the reference's are zero there.
    assert loaded.keys() <= own.keys() and all(not own[k].any() for k in own.keys() - loaded.keys())
    assert all(torch.equal(own[k], loaded[k]) for k in loaded)
    with torch.no_grad():
        expected, got = _outputs(reference, entry), _outputs(model, entry)
    if isinstance(expected, dict):
        assert expected.keys() == got.keys()
        assert all(torch.equal(expected[k], got[k]) for k in expected), {k: (expected[k] - got[k]).abs().max()
                                                                         for k in expected if expected[k].numel()}
    elif isinstance(expected, (list, tuple)):
        assert all(torch.equal(a, b) for a, b in zip(expected, got, strict=True))
    else:
        assert torch.equal(expected, got)


@pytest.mark.parametrize("name, kind", [("hrnet_w18.ms_aug_in1k", "Classification"),
                                        ("hrnet_w32.coco_256x192_udp", "Poses"),
                                        ("hrnet_w18.cityscapes_fcn_512x1024_80k", "Segmentation")])
def test_a_predictor_from_weights_uses_their_metadata(name, kind, server, cache, tiny_arch, repoint):
    """`hrnet.Predictor(weights)`: the file downloads (from 127.0.0.1), the model is the entry's, and the
    entry's class names, decoding and input size reach the results."""
    root, base, requests = server
    entry = hrnet.get_weights(name)
    reference = _reference(entry, tiny_arch)
    obj, suffix = _publisher_file(entry, reference)
    path = root / f"{entry.tag}{suffix}"
    _save(obj, path)
    served = repoint(entry, path, base, arch=tiny_arch, use_sha256=entry.source == "timm")
    predictor = hrnet.Predictor(served, device="cpu")
    picture = torch.randint(0, 255, (3, 70, 90), dtype=torch.uint8)
    result = predictor(picture)
    assert type(result).__name__ == kind and result.how["model"] == served.name and requests
    if kind == "Classification":
        assert predictor.task.classes[281] == "tabby" and all(n in predictor.task.classes for n in result.names)
    if kind == "Poses":
        assert result.how["decoding"] == "udp" and "shift off" in result.how["flip_test"]
        assert result.how["input_size"] == list(entry.input_size)
    if kind == "Segmentation":
        assert predictor.task.classes.names[0] == "road" and not predictor.model.spec.align_corners
