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
    flipped = predict_scores(Ramp(), image, InferenceConfig(flip=True), num_classes=2)
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
