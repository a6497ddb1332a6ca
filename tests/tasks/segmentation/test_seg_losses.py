import pytest
import torch
import torch.nn.functional as F

from hrnet.tasks.segmentation.losses import SegmentationLoss, cross_entropy, ohem_cross_entropy


def _reference_ohem(logits, target, ignore, thresh, min_kept, weight=None):
    """The official algorithm, written out with a full sort."""
    valid = target != ignore
    losses = F.cross_entropy(logits, target, weight=weight, ignore_index=ignore, reduction="none")[valid]
    probs = logits.softmax(1).gather(1, target.masked_fill(~valid, 0).unsqueeze(1)).squeeze(1)[valid]
    order = probs.sort()
    threshold = max(order.values[min(min_kept, probs.numel() - 1)].item(), thresh)
    return losses[probs < threshold].mean()


def test_ignored_pixels_do_not_change_the_loss():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 6, 6)
    target = torch.randint(0, 4, (2, 6, 6))
    target[:, :2] = 255
    changed = logits.clone()
    changed[:, :, :2] = 100 * torch.randn_like(changed[:, :, :2])
    assert cross_entropy(logits, target, ignore_index=255) == pytest.approx(
        cross_entropy(changed, target, ignore_index=255).item())


@pytest.mark.parametrize("min_kept", [0, 5, 40, 10_000])
def test_ohem_matches_the_official_algorithm(min_kept):
    torch.manual_seed(1)
    logits = 3 * torch.randn(2, 3, 8, 8)
    target = torch.randint(0, 3, (2, 8, 8))
    target[0, 0] = 255
    expected = _reference_ohem(logits, target, 255, 0.7, min_kept)
    assert ohem_cross_entropy(logits, target, ignore_index=255, thresh=0.7, min_kept=min_kept).item() == \
        pytest.approx(expected.item(), rel=1e-6)


def test_ohem_keeps_only_hard_pixels_when_min_kept_is_small():
    logits = torch.zeros(1, 2, 1, 4)
    logits[0, 0, 0, :2] = 10.0  # two confident, correct pixels (p ~ 1)
    target = torch.zeros(1, 1, 4, dtype=torch.long)
    hard = F.cross_entropy(logits, target, reduction="none")[0, 0, 2:].mean()
    assert ohem_cross_entropy(logits, target, ignore_index=255, thresh=0.9, min_kept=1).item() == \
        pytest.approx(hard.item())


def test_all_ignored_batch_gives_zero_with_a_gradient():
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    target = torch.full((1, 4, 4), 255)
    for loss in (cross_entropy(logits, target, ignore_index=255),
                 ohem_cross_entropy(logits, target, ignore_index=255)):
        assert loss.item() == 0.0
        loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_ocr_outputs_are_weighted_04_and_1_with_ohem_on_main_only():
    """HRNet-Semantic-Segmentation lib/core/criterion.py `OhemCrossEntropy.forward`: the auxiliary output gets
    `_ce_forward` (CrossEntropyLoss(reduction="none"), a per-pixel map that is 0 where ignored), the main
    output `_ohem_forward` (a scalar); FullModel's caller takes `loss.mean()` of 0.4 * map + scalar, so the
    auxiliary term is divided by every pixel, ignored ones included."""
    torch.manual_seed(2)
    aux, main = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 16, 16))
    target[:, :5] = 255  # a third of the pixels unlabelled: the two normalisations differ
    weights = torch.tensor([1.0, 2.0, 0.5])
    criterion = SegmentationLoss(ignore_index=255, align_corners=True, output_weights=(0.4, 1.0), ohem=True,
                                 ohem_thresh=0.7, ohem_min_kept_per_image=5, class_weights=weights)
    loss, parts = criterion((aux, main), target)
    up = lambda x: F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=True)  # noqa: E731
    aux_map = F.cross_entropy(up(aux), target, weight=weights, ignore_index=255, reduction="none")  # (2, 16, 16)
    main_ohem = _reference_ohem(up(main), target, 255, 0.7, 10, weights)  # 5 per image x 2 images
    official = (0.4 * aux_map + 1.0 * main_ohem).mean()
    assert loss.item() == pytest.approx(official.item(), rel=1e-5)
    assert parts["loss_aux"] == pytest.approx(aux_map.mean().item(), rel=1e-5)
    assert parts["loss_main"] == pytest.approx(main_ohem.item(), rel=1e-5)
    # The other choice: the weighted mean over labelled pixels, as PyTorch (and the non-OHEM criterion) does.
    labelled = SegmentationLoss(ignore_index=255, align_corners=True, output_weights=(0.4, 1.0), ohem=True,
                                ohem_thresh=0.7, ohem_min_kept_per_image=5, class_weights=weights,
                                aux_normalization="labelled")
    weighted_mean = F.cross_entropy(up(aux), target, weight=weights, ignore_index=255)
    assert labelled((aux, main), target)[0].item() == pytest.approx(0.4 * weighted_mean.item() + main_ohem.item(),
                                                                      rel=1e-5)
    assert abs(weighted_mean.item() - aux_map.mean().item()) > 0.1  # the test tells them apart


def test_ohem_budget_is_per_image_so_the_loss_does_not_depend_on_how_a_batch_is_split():
    """One process with 2 images and two processes with 1 image each see the same OHEM threshold when
    min_kept scales with the images of the forward pass (a fixed per-pass count would not)."""
    torch.manual_seed(4)
    logits = 3 * torch.randn(1, 3, 8, 8)
    target = torch.randint(0, 3, (1, 8, 8))
    criterion = SegmentationLoss(ignore_index=255, align_corners=False, ohem=True, ohem_thresh=0.2,
                                 ohem_min_kept_per_image=40)
    one, _ = criterion(logits, target)
    both, _ = criterion(logits.repeat(2, 1, 1, 1), target.repeat(2, 1, 1))
    assert both.item() == pytest.approx(one.item(), rel=1e-6)
    fixed = _reference_ohem(logits.repeat(2, 1, 1, 1), target.repeat(2, 1, 1), 255, 0.2, 40)
    assert fixed.item() != pytest.approx(one.item(), rel=1e-3)


def test_single_output_uses_the_last_weight_and_class_weights():
    torch.manual_seed(3)
    logits = torch.randn(1, 3, 5, 5)
    target = torch.randint(0, 3, (1, 5, 5))
    weights = torch.tensor([1.0, 2.0, 0.5])
    criterion = SegmentationLoss(ignore_index=255, align_corners=False, output_weights=(0.4, 1.0),
                                 class_weights=weights)
    loss, parts = criterion(logits, target)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, target, weight=weights).item(), rel=1e-6)
    assert set(parts) == {"loss_main"}
    with pytest.raises(ValueError, match="3 outputs"):
        criterion((logits, logits, logits), target)
