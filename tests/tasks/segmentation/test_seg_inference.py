import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hrnet.tasks.segmentation.inference import InferenceConfig, predict_labels, predict_scores


class Pointwise(nn.Module):
    """Per-pixel logits (a 1x1 conv) at the input's stride 4, counting its calls: a translation-
    equivariant stand-in for a segmentation model."""

    def __init__(self, stride: int = 1):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, kernel_size=1)
        self.stride = stride
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.conv(x)[..., :: self.stride, :: self.stride]


class Ramp(nn.Module):
    """Logits that grow from left to right: class 1 wins on the right, class 0 on the left."""

    def forward(self, x):
        ramp = torch.linspace(-1, 1, x.shape[-1]).expand(x.shape[0], 1, x.shape[-2], x.shape[-1])
        return torch.cat([-ramp, ramp], dim=1)


def test_whole_image_is_the_upsampled_exponentiated_logits():
    model, image = Pointwise(stride=4), torch.randn(1, 3, 32, 48)
    scores = predict_scores(model, image, InferenceConfig(align_corners=False), num_classes=4)
    expected = F.interpolate(model(image), size=(32, 48), mode="bilinear", align_corners=False).exp()
    torch.testing.assert_close(scores, expected)


def test_sliding_window_equals_whole_image_for_a_pointwise_model_and_uses_two_thirds_stride():
    model, image = Pointwise(), torch.randn(1, 3, 100, 150)
    whole = predict_scores(model, image, InferenceConfig(), num_classes=4)
    model.calls = 0
    slide = predict_scores(model, image, InferenceConfig(mode="slide", crop_size=(48, 64)), num_classes=4)
    torch.testing.assert_close(slide, whole)
    # strides int(48*2/3)=32 and int(64*2/3)=42: rows ceil(52/32)+1 = 3, cols ceil(86/42)+1 = 4
    assert model.calls == 12


def test_sliding_window_pads_images_smaller_than_the_crop():
    model, image = Pointwise(), torch.randn(2, 3, 20, 30)
    slide = predict_scores(model, image, InferenceConfig(mode="slide", crop_size=(64, 64)), num_classes=4)
    assert slide.shape == (2, 4, 20, 30)
    torch.testing.assert_close(slide, predict_scores(model, image, InferenceConfig(), num_classes=4))


def test_flip_averages_the_mirrored_pass():
    image = torch.zeros(1, 3, 8, 16)
    plain = predict_labels(Ramp(), image, InferenceConfig(), num_classes=2)
    assert plain[0, 0, 0] == 0 and plain[0, 0, -1] == 1
    flipped = predict_scores(Ramp(), image, InferenceConfig(flip_test=True), num_classes=2)
    torch.testing.assert_close(flipped, torch.ones_like(flipped))  # ramp + mirrored ramp = 0 -> exp 1


def test_multi_scale_sums_scores_resized_to_the_output_size():
    model = Pointwise()
    image = torch.randn(1, 3, 1, 1).expand(1, 3, 16, 24).contiguous()  # one colour: the same score at every scale
    single = predict_scores(model, image, InferenceConfig(), num_classes=4)
    multi = predict_scores(model, image, InferenceConfig(scales=(0.5, 1.0, 1.5), base_size=24), num_classes=4)
    torch.testing.assert_close(multi, 3 * single)


def test_output_at_full_resolution_on_request():
    model, image = Pointwise(stride=4), torch.randn(1, 3, 32, 32)
    labels = predict_labels(model, image, InferenceConfig(scales=(0.5,)), num_classes=4, output_size=(100, 90))
    assert labels.shape == (1, 100, 90)


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="crop_size"):
        InferenceConfig(mode="slide")
    with pytest.raises(ValueError, match="mode"):
        InferenceConfig(mode="tiles")


class Spy(Pointwise):
    """A Pointwise model that keeps every input it is given."""

    def __init__(self):
        super().__init__()
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.clone())
        return super().forward(x)


def _windows(spy: Spy, image: torch.Tensor) -> list[tuple[int, int, int, int]]:
    """(top, left, height, width) of each input the spy saw, located by its top-left pixel, which is
    unique in a random image (a padded window still starts with image pixels)."""
    found = []
    for crop in spy.inputs:
        hits = (image[0, 0] == crop[0, 0, 0, 0]).nonzero().tolist()
        assert len(hits) == 1
        found.append((*hits[0], *crop.shape[-2:]))
    return found


def test_slide_mode_places_windows_as_the_official_base_dataset():
    """lib/datasets/base_dataset.py multi_scale_inference: stride int(crop * 2/3), rows = ceil((H - crop) /
    stride) + 1, h0 = r * stride, h1 = min(h0 + crop, H); border windows padded to the crop. For 100x150 and a
    48x64 crop: strides 32 and 42, tops 0/32/64, lefts 0/42/84/126, every input 48x64."""
    spy, image = Spy(), torch.randn(1, 3, 100, 150)
    predict_scores(spy, image, InferenceConfig(mode="slide", crop_size=(48, 64)), num_classes=4)
    windows = _windows(spy, image)
    assert [(t, l) for t, l, _, _ in windows] == [(t, l) for t in (0, 32, 64) for l in (0, 42, 84, 126)]
    assert {(h, w) for _, _, h, w in windows} == {(48, 64)}


def test_cityscapes_mode_runs_whole_images_at_small_scales_and_fitted_windows_above():
    """lib/datasets/cityscapes.py multi_scale_inference: scale <= 1 -> one forward of the whole resized image;
    scale > 1 -> stride = crop, h1 = min(r * crop + crop, H), h0 = max(h1 - crop, 0), no padding. A 40x60 image
    with base size 60: scale 2 gives 80x120; a 32x48 crop gives rows ceil(48/32)+1 = 3 with tops 0, 32, 48 and
    cols ceil(72/48)+1 = 3 with lefts 0, 48, 72."""
    from hrnet.tasks.segmentation.inference import _rescale

    spy, image = Spy(), torch.randn(1, 3, 40, 60)
    config = InferenceConfig(mode="cityscapes", crop_size=(32, 48), scales=(0.5, 1.0, 2.0), base_size=60)
    scores = predict_scores(spy, image, config, num_classes=4)
    assert [tuple(x.shape[-2:]) for x in spy.inputs[:2]] == [(20, 30), (40, 60)]
    big = Spy()
    big.inputs = spy.inputs[2:]
    windows = _windows(big, _rescale(image, 2.0, 60))
    assert [(t, l) for t, l, _, _ in windows] == [(t, l) for t in (0, 32, 48) for l in (0, 48, 72)]
    assert {(h, w) for _, _, h, w in windows} == {(32, 48)}
    # Overlapping windows are averaged: for a pointwise model every scale equals its whole-image score.
    whole = predict_scores(spy, image, InferenceConfig(scales=(0.5, 1.0, 2.0), base_size=60), num_classes=4)
    torch.testing.assert_close(scores, whole)


def test_cityscapes_mode_is_the_cityscapes_recipes_evaluation():
    from pathlib import Path

    from hrnet.engine import load_config

    recipes = Path(__file__).resolve().parents[3] / "recipes" / "segmentation"
    for name in ("cityscapes_hrnet_w48.yaml", "cityscapes_hrnet_w48_ocr.yaml"):
        assert load_config(recipes / name).data.test_mode == "cityscapes"
