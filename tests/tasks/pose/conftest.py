from pathlib import Path

import pytest

from helpers import DATA


def _real_data(folder: str, marker: str) -> Path:
    """shared/data/<folder>, or skip the test when it (or its annotation file) is absent."""
    path = DATA / folder
    if not (path / marker).is_file():
        pytest.skip(f"real data shared/data/{folder} is absent")
    return path


@pytest.fixture
def coco_dir() -> Path:
    return _real_data("coco_kpt", "test_coco.json")


@pytest.fixture
def mpii_dir() -> Path:
    return _real_data("mpii", "test_mpii.json")
