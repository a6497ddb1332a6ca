from pathlib import Path

import pytest

from helpers import shared_data


@pytest.fixture
def coco_dir() -> Path:
    return shared_data("coco_kpt", "test_coco.json").parent


@pytest.fixture
def mpii_dir() -> Path:
    return shared_data("mpii", "test_mpii.json").parent
