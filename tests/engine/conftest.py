from __future__ import annotations

from pathlib import Path

import pytest

from hrnet.engine.testing import make_synthetic_folder


@pytest.fixture(scope="session")
def stripes(tmp_path_factory) -> tuple[Path, Path]:
    """(train, val) ImageFolders of two synthetic classes: 12 + 4 images each."""
    root = tmp_path_factory.mktemp("stripes")
    return (make_synthetic_folder(root / "train", per_class=12, seed=0),
            make_synthetic_folder(root / "val", per_class=4, seed=1))
