import numpy as np
import torch

from hrnet.tasks.segmentation.transforms import IMAGENET_MEAN, IMAGENET_STD, EvalTransform, TrainTransform

MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


CODES = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]], dtype=torch.float32)


def _coded_scene(height=30, width=40):
    """Labels 0..3 in quadrants, each painted in its own colour of CODES, so pixels carry their label
    (a bilinear blend of two codes is never a code)."""
    labels = np.zeros((height, width), np.int64)
    labels[: height // 2, width // 2 :] = 1
    labels[height // 2 :, : width // 2] = 2
    labels[height // 2 :, width // 2 :] = 3
    return CODES.numpy().astype(np.uint8)[labels], labels


def _denormalize(image: torch.Tensor) -> torch.Tensor:
    return ((image * STD + MEAN) * 255).round()


def test_small_images_are_padded_black_with_the_ignore_label():
    image, labels = _coded_scene(10, 12)
    transform = TrainTransform(crop_size=(64, 64), ignore_index=255, base_size=12, scale_range=(1.0, 1.0), flip=False)
    out_image, out_labels = transform(image, labels)
    assert out_image.shape == (3, 64, 64) and out_labels.shape == (64, 64)
    assert (out_labels[10:, :] == 255).all() and (out_labels[:, 12:] == 255).all()
    assert out_labels[:10, :12].tolist() == labels.tolist()
    assert (_denormalize(out_image)[:, 10:, :] == 0).all()


def test_image_and_labels_stay_aligned_through_scale_crop_and_flip():
    image, labels = _coded_scene()
    transform = TrainTransform(crop_size=(24, 24), ignore_index=255, base_size=None)
    torch.manual_seed(0)
    flipped_once = False
    for _ in range(20):
        out_image, out_labels = transform(image, labels)
        colors = _denormalize(out_image).permute(1, 2, 0)  # (H, W, 3)
        # Nearest-neighbour labels: no new values; where the colour is a code it gives the label back.
        assert set(out_labels.unique().tolist()) <= {0, 1, 2, 3, 255}
        matches = (colors[:, :, None, :] == CODES).all(dim=-1)  # (H, W, 4)
        coded = matches.any(dim=-1)
        assert coded[out_labels != 255].float().mean() > 0.5
        assert torch.equal(matches.float().argmax(dim=-1)[coded], out_labels[coded])
        flipped_once |= bool((out_labels[:, 0] == 1).any() | (out_labels[:, 0] == 3).any())
    assert flipped_once  # a right-hand label reached the left edge: flips happen


def test_scales_are_drawn_in_steps_of_a_tenth_within_the_range():
    image, labels = _coded_scene(20, 20)
    transform = TrainTransform(crop_size=(1, 1), ignore_index=255, base_size=100, scale_range=(0.5, 2.0))
    torch.manual_seed(0)
    sizes = set()
    for _ in range(200):
        scaled, _ = transform.random_scale(image, labels)
        sizes.add(scaled.shape[0])
    assert min(sizes) == 50 and max(sizes) == 200 and sizes <= set(range(50, 201, 10))


def test_photometric_jitter_changes_only_the_image():
    image, labels = _coded_scene()
    plain = TrainTransform(crop_size=(30, 40), ignore_index=255, scale_range=(1, 1), flip=False)
    jitter = TrainTransform(crop_size=(30, 40), ignore_index=255, scale_range=(1, 1), flip=False, photometric=True)
    changed = 0
    for seed in range(8):
        torch.manual_seed(seed)
        a_image, a_labels = plain(image, labels)
        torch.manual_seed(seed)
        b_image, b_labels = jitter(image, labels)
        assert torch.equal(a_labels, b_labels)
        changed += not torch.allclose(a_image, b_image)
    assert changed > 0


def test_eval_transform_resizes_the_image_but_keeps_the_mask():
    image, labels = _coded_scene(30, 40)
    out_image, out_labels = EvalTransform(base_size=80)(image, labels)
    assert out_image.shape == (3, 60, 80) and out_labels.shape == (30, 40)


def test_the_default_and_official_recipes_draw_scales_up_to_2_1():
    """Official `multi_scale_aug` input: `0.5 + random.randint(0, SCALE_FACTOR) / 10.0` with SCALE_FACTOR 16
    (HRNet-Semantic-Segmentation lib/datasets/base_dataset.py; randint is inclusive): 17 scales, 0.5 .. 2.1."""
    import yaml
    from pathlib import Path

    from hrnet.tasks.segmentation.task import SegmentationDataConfig

    assert SegmentationDataConfig().scale_range == (0.5, 2.1)
    for recipe in sorted(Path(__file__).parents[3].glob("recipes/segmentation/cityscapes_*.yaml")):
        assert yaml.safe_load(recipe.read_text())["data"]["scale_range"] == [0.5, 2.1], recipe
    image, labels = _coded_scene(20, 20)
    transform = TrainTransform(crop_size=(1, 1), ignore_index=255, base_size=100)
    torch.manual_seed(0)
    sizes = {transform.random_scale(image, labels)[0].shape[0] for _ in range(400)}
    assert sizes == set(range(50, 211, 10))


def test_a_one_pixel_crop_gives_tensors():
    """A 1x1 flipped crop is a view numpy calls contiguous but with a negative stride: it must be copied."""
    transform = TrainTransform(crop_size=(1, 1), ignore_index=255)
    rng = np.random.default_rng(0)
    image, labels = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8), np.zeros((40, 50), np.uint8)
    torch.manual_seed(0)
    shapes = {tuple(t.shape) for _ in range(12) for t in transform(image, labels)}
    assert shapes == {(3, 1, 1), (1, 1)}
