import numpy as np
import pytest

from hrnet.data.io import DataError
from hrnet.tasks.segmentation.classes import ADE20K, CAMVID, CITYSCAPES, ClassList, resolve_classes, voc_palette


def test_cityscapes_label_ids_map_to_19_train_ids_and_the_rest_to_ignore():
    raw = np.array([[7, 8, 11, 26], [33, 0, 6, 34]], dtype=np.uint8)  # road, sidewalk, building, car / bicycle, void...
    assert CITYSCAPES.encode(raw).tolist() == [[0, 1, 2, 13], [18, 255, 255, 255]]
    assert CITYSCAPES.num_classes == 19
    assert sorted(CITYSCAPES.label_map.values()) == list(range(19))


def test_ade20k_reduces_the_zero_label():
    raw = np.array([0, 1, 150, 255], dtype=np.uint8)
    assert ADE20K.encode(raw).tolist() == [255, 0, 149, 255]
    assert ADE20K.num_classes == 150 and len(set(ADE20K.names)) == 150


def test_camvid_keeps_values_and_ignores_11():
    raw = np.arange(12, dtype=np.uint8)
    assert CAMVID.encode(raw).tolist() == list(range(12))
    assert CAMVID.ignore_index == 11 and CAMVID.invalid_values(CAMVID.encode(raw)) == []


def test_voc_palette_matches_the_pascal_colours():
    palette = voc_palette(21)
    assert palette[1] == (128, 0, 0) and palette[15] == (192, 128, 128) and palette[20] == (0, 64, 128)


def test_class_list_from_text_with_and_without_colours(tmp_path):
    plain = tmp_path / "names.txt"
    plain.write_text("_background_\ncar  # a comment\n\ntruck\n")
    classes = ClassList.from_file(plain)
    assert classes.names == ("_background_", "car", "truck") and classes.colors[1] == (128, 0, 0)
    coloured = tmp_path / "coloured.txt"
    coloured.write_text("sky 70 130 180\ntraffic light 250 170 30\n")
    classes = ClassList.from_file(coloured, ignore_index=254)
    assert classes.names == ("sky", "traffic light") and classes.colors[1] == (250, 170, 30)
    assert classes.ignore_index == 254


def test_class_list_from_yaml_and_errors(tmp_path):
    path = tmp_path / "classes.yaml"
    path.write_text("names: [a, b]\ncolors: [[1, 2, 3], [4, 5, 6]]\nignore_index: 200\n")
    assert ClassList.from_file(path) == ClassList(names=("a", "b"), colors=((1, 2, 3), (4, 5, 6)), ignore_index=200)
    path.write_text("names: [a, b]\ncolours: [[1, 2, 3]]\n")
    with pytest.raises(DataError, match="unknown keys.*colours"):
        ClassList.from_file(path)
    path.write_text("names: [a, b]\ncolors: [[1, 2, 3]]\n")
    with pytest.raises(DataError, match=f"{path}.*2 names but 1 colours"):
        ClassList.from_file(path)
    with pytest.raises(DataError, match="does not exist"):
        ClassList.from_file(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="ignore_index 1"):
        ClassList(names=("a", "b"), ignore_index=1)


def test_invalid_values_lists_labels_outside_the_class_list():
    classes = ClassList(names=("a", "b", "c"))
    assert classes.invalid_values(np.array([0, 2, 3, 7, 255])) == [3, 7]


def test_resolve_classes_by_name_or_file(tmp_path):
    assert resolve_classes("Cityscapes") is CITYSCAPES
    (tmp_path / "c.txt").write_text("x\ny\n")
    assert resolve_classes(tmp_path / "c.txt").names == ("x", "y")
    with pytest.raises(DataError, match="no class list"):
        resolve_classes(None)
