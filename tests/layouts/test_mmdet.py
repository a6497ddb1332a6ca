"""HRNet-Object-Detection (mmdetection v1) and mmdetection 2.x detectors load into the torchvision detector.

Layouts, from the publishers' code: HRNet-Object-Detection `mmdet/models/necks/hrfpn.py` (`neck.reduction_conv.0`,
`neck.fpn_conv.{i}`, convs with bias), `anchor_heads/rpn_head.py` (`rpn_head.rpn_conv/rpn_cls/rpn_reg`, sigmoid
objectness), `bbox_heads/convfc_bbox_head.py` (`bbox_head.shared_fcs.{0,1}`, `fc_cls` with the background first,
class-specific `fc_reg` with background rows), `mask_heads/fcn_mask_head.py` (`mask_head.convs.{i}.conv`,
`upsample`, `conv_logits`); mmdetection 2.x the same under `neck.reduction_conv.conv`, `neck.fpn_convs.{i}.conv`,
`roi_head.bbox_head.*` (background last, no background rows in `fc_reg` / `conv_logits`). Every expected output
is computed here from the raw tensors with torch.nn.functional.
"""

import pytest
import torch
import torch.nn.functional as F

import hrnet
from hrnet.detectors import build_detector
from helpers import randomize_batchnorm, tiny_spec

C, R, K = 16, 32, 3  # pyramid width, box-head width, object classes (K + 1 with the background)


def _tensors(version: str, body_state: dict, generator: torch.Generator) -> dict:
    def t(*shape):
        return torch.randn(*shape, generator=generator) * 0.1

    total = 8 + 16 + 32 + 64
    v1 = version == "v1"
    neck = {"neck.reduction_conv.0." if v1 else "neck.reduction_conv.conv.": (t(C, total, 1, 1), t(C))}
    for i in range(5):
        neck[f"neck.fpn_conv.{i}." if v1 else f"neck.fpn_convs.{i}.conv."] = (t(C, C, 3, 3), t(C))
    roi = "" if v1 else "roi_head."
    classes = K + 1
    layers = {**neck, "rpn_head.rpn_conv.": (t(C, C, 3, 3), t(C)), "rpn_head.rpn_cls.": (t(3, C, 1, 1), t(3)),
              "rpn_head.rpn_reg.": (t(12, C, 1, 1), t(12)),
              f"{roi}bbox_head.shared_fcs.0.": (t(R, C * 49), t(R)), f"{roi}bbox_head.shared_fcs.1.": (t(R, R), t(R)),
              f"{roi}bbox_head.fc_cls.": (t(classes, R), t(classes)),
              f"{roi}bbox_head.fc_reg.": (t((classes if v1 else K) * 4, R), t((classes if v1 else K) * 4)),
              f"{roi}mask_head.upsample.": (t(256, 256, 2, 2), t(256)),
              f"{roi}mask_head.conv_logits.": (t(classes if v1 else K, 256, 1, 1), t(classes if v1 else K))}
    for i in range(4):
        layers[f"{roi}mask_head.convs.{i}.conv."] = (t(256, C if i == 0 else 256, 3, 3), t(256))
    state = {"backbone." + k: v for k, v in body_state.items()}
    for prefix, (weight, bias) in layers.items():
        state[prefix + "weight"], state[prefix + "bias"] = weight, bias
    return state


def _neck(features, s, v1):
    up = [features[0]] + [F.interpolate(f, scale_factor=2**i, mode="bilinear") for i, f in enumerate(features[1:], 1)]
    red = "neck.reduction_conv.0." if v1 else "neck.reduction_conv.conv."
    x = F.conv2d(torch.cat(up, 1), s[red + "weight"], s[red + "bias"])
    outs = [x] + [F.avg_pool2d(x, 2**i, 2**i) for i in range(1, 5)]
    names = [f"neck.fpn_conv.{i}." if v1 else f"neck.fpn_convs.{i}.conv." for i in range(5)]
    return [F.conv2d(o, s[n + "weight"], s[n + "bias"], padding=1) for o, n in zip(outs, names)]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_official_and_mmdet_detectors_give_the_publishers_features_and_head_outputs(tmp_path, version):
    torch.manual_seed(0)
    body = randomize_batchnorm(hrnet.create_model(tiny_spec(stem_channels=16), task="backbone"), 0).eval()
    state = _tensors(version, body.state_dict(), torch.Generator().manual_seed(1))
    torch.save({"meta": {}, "state_dict": state}, tmp_path / f"mask_rcnn_{version}.pth")
    model = build_detector(tiny_spec(stem_channels=16), num_classes=K + 1, detector="mask_rcnn", fpn_channels=C,
                           representation_size=R, checkpoint=tmp_path / f"mask_rcnn_{version}.pth").eval()
    assert any(("HRNet-Object-Detection" if version == "v1" else "mmdetection 2.x") in n
               for n in model.load_report.notes)
    v1, roi = version == "v1", "" if version == "v1" else "roi_head."
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        levels = list(model.backbone(x).values())
        for ours, theirs in zip(levels, _neck(body(x), state, v1)):
            torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
        # RPN: sigmoid objectness logits and anchor-major deltas, per level.
        objectness, deltas = model.rpn.head(levels)
        hidden = F.relu(F.conv2d(levels[2], state["rpn_head.rpn_conv.weight"], state["rpn_head.rpn_conv.bias"], padding=1))
        torch.testing.assert_close(objectness[2], F.conv2d(hidden, state["rpn_head.rpn_cls.weight"],
                                                           state["rpn_head.rpn_cls.bias"]))
        torch.testing.assert_close(deltas[2], F.conv2d(hidden, state["rpn_head.rpn_reg.weight"],
                                                       state["rpn_head.rpn_reg.bias"]))
        # Box head on RoI features: torchvision's class order has the background first.
        rois = torch.randn(5, C, 7, 7)
        scores, boxes = model.roi_heads.box_predictor(model.roi_heads.box_head(rois))
        h = F.relu(F.linear(rois.flatten(1), state[f"{roi}bbox_head.shared_fcs.0.weight"],
                            state[f"{roi}bbox_head.shared_fcs.0.bias"]))
        h = F.relu(F.linear(h, state[f"{roi}bbox_head.shared_fcs.1.weight"], state[f"{roi}bbox_head.shared_fcs.1.bias"]))
        raw_scores = F.linear(h, state[f"{roi}bbox_head.fc_cls.weight"], state[f"{roi}bbox_head.fc_cls.bias"])
        raw_boxes = F.linear(h, state[f"{roi}bbox_head.fc_reg.weight"], state[f"{roi}bbox_head.fc_reg.bias"])
        if v1:
            torch.testing.assert_close(scores, raw_scores)
            torch.testing.assert_close(boxes, raw_boxes)
        else:
            torch.testing.assert_close(scores, torch.cat([raw_scores[:, -1:], raw_scores[:, :-1]], 1))
            torch.testing.assert_close(boxes, torch.cat([torch.zeros(5, 4), raw_boxes], 1))
        # Mask head: four 3x3 convs + ReLU, a 2x deconv + ReLU, the per-class 1x1 logits.
        m = torch.randn(2, C, 14, 14)
        logits = model.roi_heads.mask_predictor(model.roi_heads.mask_head(m))
        for i in range(4):
            m = F.relu(F.conv2d(m, state[f"{roi}mask_head.convs.{i}.conv.weight"],
                                state[f"{roi}mask_head.convs.{i}.conv.bias"], padding=1))
        m = F.relu(F.conv_transpose2d(m, state[f"{roi}mask_head.upsample.weight"], state[f"{roi}mask_head.upsample.bias"],
                                      stride=2))
        raw = F.conv2d(m, state[f"{roi}mask_head.conv_logits.weight"], state[f"{roi}mask_head.conv_logits.bias"])
        expected = raw if v1 else torch.cat([torch.zeros(2, 1, 28, 28), raw], 1)
        torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-5)
        found = model([torch.rand(3, 96, 128)])[0]
    assert set(found) == {"boxes", "labels", "scores", "masks"}


def test_a_detector_of_the_first_release_still_loads(tmp_path):
    """Detectors saved before the neck got the official names (reduction_conv.conv, fpn_convs.N.conv)."""
    import re

    model = build_detector(tiny_spec(stem_channels=16), num_classes=3, fpn_channels=C, representation_size=R)
    old = {re.sub(r"fpn\.fpn_conv\.(\d+)\.", r"fpn.fpn_convs.\1.conv.",
                  k.replace("fpn.reduction_conv.0.", "fpn.reduction_conv.conv.")): v
           for k, v in model.state_dict().items()}
    assert "backbone.fpn.fpn_convs.4.conv.bias" in old
    torch.save(old, tmp_path / "old.pth")
    again = build_detector(tiny_spec(stem_channels=16), num_classes=3, fpn_channels=C, representation_size=R,
                           checkpoint=tmp_path / "old.pth")
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key


@pytest.mark.parametrize("convention, stride4", [
    # HRNet-Object-Detection mmdet/core/anchor/anchor_generator.py: centre 0.5 (4 - 1) = 1.5, +-0.5 (w - 1), rounded
    # (torch.round: half to even): ratio 0.5 gives w = 45.25, h = 22.63.
    ("mmdet-v1", [[-21.0, -9.0, 24.0, 12.0], [-14.0, -14.0, 17.0, 17.0], [-9.0, -21.0, 12.0, 24.0]]),
    # mmdetection 2.x mmdet/core/anchor/anchor_generator.py: centre 0, +-0.5 w, not rounded.
    ("mmdet-v2", [[-22.6274, -11.3137, 22.6274, 11.3137], [-16.0, -16.0, 16.0, 16.0],
                  [-11.3137, -22.6274, 11.3137, 22.6274]]),
])
def test_anchors_follow_the_publisher_of_the_checkpoint(tmp_path, convention, stride4):
    from hrnet.detectors import HRNetAnchors

    torch.testing.assert_close(HRNetAnchors(convention).cell_anchors[0], torch.tensor(stride4), atol=1e-4, rtol=0)
    body = hrnet.create_model(tiny_spec(stem_channels=16), task="backbone")
    state = _tensors("v1" if convention == "mmdet-v1" else "v2", body.state_dict(), torch.Generator().manual_seed(2))
    torch.save(state, tmp_path / "det.pth")
    model = build_detector(tiny_spec(stem_channels=16), num_classes=K + 1, detector="mask_rcnn", fpn_channels=C,
                           representation_size=R, checkpoint=tmp_path / "det.pth")
    assert model.rpn.anchor_generator.convention == convention
    assert any(convention in note for note in model.load_report.notes)
    plain = build_detector(tiny_spec(stem_channels=16), num_classes=3, fpn_channels=C, representation_size=R)
    assert plain.rpn.anchor_generator.convention == "torchvision"
