"""Classification: the test-time flip equals a manual average of the logits of an image and its
mirror (and the evaluator scores those), and the small-data augmentations are seeded and
change the image only."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hrnet.engine import build_loader, config_from_dict, evaluate
from hrnet.engine.testing import make_synthetic_folder, tiny_classification_recipe
from hrnet.tasks.classification import ClassificationTask, TopKEvaluator, build_transform, classification_flip
from helpers import one_thread  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def stripes(tmp_path_factory):
    root = tmp_path_factory.mktemp("stripes")
    return make_synthetic_folder(root / "train", per_class=4, seed=0), make_synthetic_folder(root / "val", per_class=4,
                                                                                            seed=1)


class Lopsided(nn.Module):
    """Logits that depend on where things are (so that the mirror matters): (N, 3, H, W) -> (N, 3)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.weights = nn.Parameter(torch.randn(3, 3, 8, 8))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nchw,kchw->nk", F.adaptive_avg_pool2d(images, 8), self.weights)


def test_flip_is_the_mean_of_the_two_logits():
    model, images = Lopsided(), torch.randn(4, 3, 16, 16)
    manual = (model(images) + model(torch.flip(images, dims=[3]))) / 2
    torch.testing.assert_close(classification_flip(model, images), manual)
    assert not torch.allclose(manual, model(images))


def test_the_evaluator_scores_the_flip_average():
    model, images, labels = Lopsided(), torch.randn(6, 3, 16, 16), torch.tensor([0, 1, 2, 0, 1, 2])
    evaluator = TopKEvaluator(torch.device("cpu"), 3, flip=True)
    with torch.no_grad():
        evaluator.update(model, (images, labels))
        manual = (model(images) + model(images.flip(-1))) / 2
    metrics = evaluator.compute()
    assert metrics["top1"] == pytest.approx(100 * (manual.argmax(1) == labels).float().mean().item())
    assert metrics["loss"] == pytest.approx(F.cross_entropy(manual, labels).item(), rel=1e-6)
    assert evaluator.how["flip"].startswith("logits of the image and its mirror")
    assert TopKEvaluator(torch.device("cpu"), 3).how["flip"] == "off"


def test_recipe_flip_reaches_evaluation(stripes):
    config = config_from_dict(tiny_classification_recipe(*stripes, data={"test_flip": True}))
    task = ClassificationTask(config)
    model = task.build_model().eval()
    loader, _ = build_loader(task, config, "val", torch.device("cpu"))
    flipped = evaluate(model, task, loader, torch.device("cpu"))
    images, labels = next(iter(loader))
    with torch.no_grad():
        manual = (model(images) + model(images.flip(-1))) / 2
    assert flipped["top1"] == pytest.approx(100 * (manual.argmax(1) == labels).float().mean().item())


def test_augmentations_are_seeded_and_off_by_default(stripes):
    image = torch.randint(0, 255, (3, 48, 48), dtype=torch.uint8)
    base = tiny_classification_recipe(*stripes)["data"]
    config = config_from_dict(tiny_classification_recipe(*stripes, data={
        "color_jitter": [0.4, 0.4, 0.4, 0.1], "blur": 1.0, "cutout": 0.5}))
    official = build_transform(config_from_dict(tiny_classification_recipe(*stripes, data=base)).data, train=True)
    augmented = build_transform(config.data, train=True)
    outs = []
    for transform in (official, augmented, augmented):
        torch.manual_seed(7)
        outs.append(transform(image))
    assert torch.equal(outs[1], outs[2]) and not torch.equal(outs[0], outs[1])
    hole = (outs[1] == 0).all(dim=0)
    assert hole.sum() >= 16 * 16 // 4  # the cutout square (side 16 of 32, possibly clipped)
    with pytest.raises(ValueError, match=r"color_jitter .* must be \[brightness, contrast, saturation, hue\]"):
        config_from_dict(tiny_classification_recipe(*stripes, data={"color_jitter": [0.4, -1, 0.4, 0.1]}))
    with pytest.raises(ValueError, match="blur 2.0 is the probability"):
        config_from_dict(tiny_classification_recipe(*stripes, data={"blur": 2.0}))
