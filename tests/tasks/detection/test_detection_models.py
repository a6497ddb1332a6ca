from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

import hrnet
from hrnet.checkpoints import CheckpointError
from hrnet.detectors import build_detector


def _targets(masks: bool = False) -> list[dict]:
    targets = [{"boxes": torch.tensor([[10.0, 12.0, 50.0, 60.0]]), "labels": torch.tensor([1])},
               {"boxes": torch.tensor([[5.0, 5.0, 40.0, 70.0], [30.0, 20.0, 60.0, 50.0]]),
                "labels": torch.tensor([2, 1])}]
    if masks:
        for target, size in zip(targets, [(90, 120), (80, 64)]):
            target["masks"] = torch.zeros((len(target["boxes"]), *size), dtype=torch.uint8)
            for mask, (x1, y1, x2, y2) in zip(target["masks"], target["boxes"].int().tolist()):
                mask[y1:y2, x1:x2] = 1
    return targets


@pytest.mark.parametrize("detector, losses", [
    ("faster_rcnn", {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}),
    ("mask_rcnn", {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg", "loss_mask"}),
])
def test_training_returns_losses_and_eval_returns_detections_per_image(detector, losses, tiny_det, small):
    torch.manual_seed(0)
    model = build_detector(tiny_det, num_classes=3, detector=detector, **small)
    images = [torch.rand(3, 90, 120), torch.rand(3, 80, 64)]  # different sizes in one batch
    out = model.train()(images, _targets(masks=detector == "mask_rcnn"))
    assert set(out) == losses and all(torch.isfinite(v) and v.ndim == 0 for v in out.values())
    sum(out.values()).backward()
    assert model.backbone.body.conv1.weight.grad.abs().sum() > 0  # the loss reaches the HRNet
    with torch.no_grad():
        found = model.eval()(images)
    assert len(found) == 2
    for detections, image in zip(found, images):
        count = len(detections["scores"])
        assert detections["boxes"].shape == (count, 4) and detections["labels"].shape == (count,)
        assert ((detections["labels"] >= 1) & (detections["labels"] <= 2)).all()
        # boxes come back in the input image's pixels
        assert (detections["boxes"][:, 2] <= image.shape[2] + 1e-3).all()
        assert (detections["boxes"][:, 3] <= image.shape[1] + 1e-3).all()
        if detector == "mask_rcnn":
            assert detections["masks"].shape == (count, 1, *image.shape[1:])


def test_official_settings_anchors_resize_and_pyramid(tiny_det):
    model = build_detector(tiny_det, num_classes=81)
    transform = model.transform
    assert transform.min_size == (800,) and transform.max_size == 1333 and transform.size_divisible == 32
    assert model.rpn.anchor_generator.sizes == ((32,), (64,), (128,), (256,), (512,))
    assert all(r == (0.5, 1.0, 2.0) for r in model.rpn.anchor_generator.aspect_ratios)
    assert model.roi_heads.box_roi_pool.featmap_names == ["0", "1", "2", "3"]
    assert model.roi_heads.box_predictor.cls_score.out_features == 81
    assert model.backbone.out_channels == 256
    with torch.no_grad():
        levels = model.backbone.eval()(torch.zeros(1, 3, 128, 96))
    assert list(levels) == ["0", "1", "2", "3", "4"]
    assert [tuple(v.shape[-2:]) for v in levels.values()] == [(32, 24), (16, 12), (8, 6), (4, 3), (2, 1)]


def test_multiscale_training_draws_sizes_and_eval_uses_the_last(tiny_det):
    model = build_detector(tiny_det, num_classes=3, min_size=[96, 112, 128], max_size=400)
    seen = set()
    for _ in range(30):
        resized, _ = model.transform.train()([torch.zeros(3, 100, 100)])
        seen.add(resized.image_sizes[0][0])
    assert seen == {96, 112, 128}
    resized, _ = model.transform.eval()([torch.zeros(3, 100, 100)])
    assert resized.image_sizes[0] == (128, 128) and resized.tensors.shape[-1] % 32 == 0


def test_imagenet_checkpoint_loads_into_the_backbone_and_frozen_norm_keeps_it(tmp_path, tiny_det, small):
    classifier = hrnet.create_model(tiny_det, task="classification", num_classes=10)
    for module in classifier.modules():  # non-trivial statistics, to see them arrive
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    path = tmp_path / "imagenet.pth"
    torch.save(classifier.state_dict(), path)
    for frozen in (False, True):
        model = build_detector(tiny_det, num_classes=3, checkpoint=path, backbone_norm="frozen" if frozen else "train",
                               **small)
        body = model.backbone.body
        assert torch.equal(body.conv1.weight, classifier.backbone.conv1.weight)
        assert torch.equal(body.stage4[0].branches[3][0].bn2.running_var,
                           classifier.backbone.stage4[0].branches[3][0].bn2.running_var)
        norms = [m for m in body.modules() if isinstance(m, (nn.BatchNorm2d, FrozenBatchNorm2d))]
        assert all(isinstance(m, FrozenBatchNorm2d) == frozen for m in norms)
    # Frozen statistics do not move in training, and BatchNorm ones do.
    before = body.bn1.running_mean.clone()
    body.train()(torch.rand(2, 3, 64, 64))
    assert torch.equal(body.bn1.running_mean, before)
    assert not any(n.endswith("num_batches_tracked") for n in body.state_dict())


def test_norm_eval_keeps_statistics_and_trains_the_affine(tiny_det, small):
    """Official HRNet-Object-Detection backbone with norm_eval=True: in training mode every BatchNorm of
    the HRNet is put back in eval mode (running statistics used and unchanged), its weight and bias still
    require and receive gradients; the neck and heads train normally."""
    torch.manual_seed(0)
    model = build_detector(tiny_det, num_classes=3, backbone_norm="norm_eval", **small).train()
    body = model.backbone.body
    norms = [m for m in body.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms) and body.training and model.roi_heads.training
    before = [m.running_mean.clone() for m in norms]
    losses = model([torch.rand(3, 90, 120), torch.rand(3, 80, 64)], _targets())
    sum(losses.values()).backward()
    assert all(torch.equal(m.running_mean, b) for m, b in zip(norms, before))
    assert all(m.weight.requires_grad and m.weight.grad is not None for m in norms)
    assert body.bn1.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="backbone_norm"):
        build_detector(tiny_det, num_classes=3, backbone_norm="sync")


def test_the_neck_has_the_official_names_and_initialisation(tiny_det):
    """HRNet-Object-Detection mmdet/models/necks/hrfpn.py: reduction_conv.0 and fpn_conv.{i} (convs with
    bias), kaiming_normal_(a=1) weights, zero biases."""
    torch.manual_seed(0)
    model = build_detector(tiny_det, num_classes=3)
    keys = [k for k in model.state_dict() if k.startswith("backbone.fpn.")]
    assert keys == ["backbone.fpn.reduction_conv.0.weight", "backbone.fpn.reduction_conv.0.bias"] + \
        [f"backbone.fpn.fpn_conv.{i}.{p}" for i in range(5) for p in ("weight", "bias")]
    conv = model.backbone.fpn.fpn_conv[0]
    fan_in = conv.weight[0].numel()
    # kaiming normal with a=1: std = sqrt(2 / (1 + a^2) / fan_in) = sqrt(1 / fan_in)
    assert conv.weight.std().item() == pytest.approx(fan_in ** -0.5, rel=0.05)
    assert conv.bias.abs().max() == 0


def test_a_saved_detector_reloads_whole_and_a_wrong_width_is_refused(tmp_path, tiny_det, small):
    model = build_detector(tiny_det, num_classes=3, **small)
    path = tmp_path / "detector.pth"
    torch.save({"state_dict": model.state_dict()}, path)
    again = build_detector(tiny_det, num_classes=3, checkpoint=path, **small)
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    wide = hrnet.create_model("hrnet_w18_small_v1", task="classification")
    torch.save(wide.state_dict(), tmp_path / "w18.pth")
    with pytest.raises(CheckpointError, match="does not fit"):
        build_detector(tiny_det, num_classes=3, checkpoint=tmp_path / "w18.pth", **small)


@pytest.mark.parametrize("options, message", [
    ({"detector": "retinanet"}, "unknown detector 'retinanet'"),
    ({"num_classes": 1}, "must count the background"),
])
def test_bad_arguments_are_refused(options, message, tiny_det):
    with pytest.raises(ValueError, match=message):
        build_detector(tiny_det, **{"num_classes": 3, **options})


def test_detector_options_set_the_test_time_proposals(tiny_det, small):
    model = build_detector(tiny_det, num_classes=3, rpn_pre_nms_top_n_test=2000, rpn_post_nms_top_n_test=2000, **small)
    model.eval()
    assert model.rpn.pre_nms_top_n() == 2000 and model.rpn.post_nms_top_n() == 2000
