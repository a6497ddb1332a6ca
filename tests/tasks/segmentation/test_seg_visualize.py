import numpy as np

from hrnet.tasks.segmentation.classes import ClassList
from hrnet.tasks.segmentation.visualize import colorize, overlay

CLASSES = ClassList(names=("a", "b"), colors=((255, 0, 0), (0, 0, 255)))


def test_colorize_paints_class_colours_and_ignore_black():
    labels = np.array([[0, 1, 255]])
    assert colorize(labels, CLASSES).tolist() == [[[255, 0, 0], [0, 0, 255], [0, 0, 0]]]


def test_overlay_blends_labelled_pixels_and_keeps_ignored_ones():
    image = np.full((1, 3, 3), 100, np.uint8)
    out = overlay(image, np.array([[0, 1, 255]]), CLASSES, alpha=0.5, legend=False)
    assert out.tolist() == [[[178, 50, 50], [50, 50, 178], [100, 100, 100]]]


def test_legend_names_the_classes_present():
    image = np.zeros((120, 200, 3), np.uint8)
    labels = np.zeros((120, 200), np.int64)
    with_legend = overlay(image, labels, CLASSES, legend=True)
    without = overlay(image, labels, CLASSES, legend=False)
    changed = np.argwhere((with_legend != without).any(axis=2))
    assert len(changed) and changed[:, 0].max() < 40  # one row: only class "a" is listed
