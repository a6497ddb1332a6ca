import numpy as np

from hrnet.tasks.segmentation.classes import ClassList
from hrnet.tasks.segmentation.data import SegmentationDataset, find_pairs
from hrnet.tasks.segmentation.synthetic import SCENE_CLASSES, draw_scene


def test_scenes_are_deterministic_and_labelled_within_the_class_list():
    image, mask = draw_scene(7, size=64)
    again_image, again_mask = draw_scene(7, size=64)
    assert np.array_equal(image, again_image) and np.array_equal(mask, again_mask)
    assert not np.array_equal(mask, draw_scene(8, size=64)[1]) or not np.array_equal(image, draw_scene(8, size=64)[0])
    assert image.shape == (64, 64, 3) and mask.shape == (64, 64)
    assert set(np.unique(mask)) <= set(range(SCENE_CLASSES.num_classes)) | {255}
    assert (mask == 255).any() and (mask == 0).any()  # outlines are ignored, background is labelled


def test_written_scenes_load_through_the_generic_format(scenes):
    classes = ClassList.from_file(scenes / "classes.txt")
    assert classes == SCENE_CLASSES
    dataset = SegmentationDataset(pairs=find_pairs("generic", scenes, "val"), classes=classes)
    assert len(dataset) == 8 and dataset.check() == []
    assert dataset.class_pixel_counts()[1:].sum() > 0  # objects are there
