"""`hrnet weights list | info | download | place` on the command line."""

import pytest
import torch

import hrnet
from hrnet.cli import main
from hrnet.weights import registry


@pytest.fixture
def served_entry(server, cache, repoint, monkeypatch):
    """hrnet_w32.coco_256x192 re-pointed at a file on the local server, registered under its name."""
    root, base, _ = server
    path = root / "pose.pth"
    torch.save({"backbone.conv1.weight": torch.ones(2, 3, 3, 3)}, path)
    entry = repoint(hrnet.get_weights("hrnet_w32.coco_256x192"), path, base)
    table = dict(registry._registry()) | {entry.name: entry}
    monkeypatch.setattr(registry, "_registry", lambda: table)
    return entry, root


def test_list_shows_the_metric_column_and_filters(capsys):
    assert main(["weights", "list", "--task", "pose", "--arch", "hrnet_w48", "--source", "mmpose"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "task", "metric", "source", "download", "licence"]
    assert any(line.startswith("hrnet_w48.coco_384x288_dark ") and "AP 77.2" in line for line in lines)
    assert all(" mmpose " in line for line in lines[1:])
    assert main(["weights", "list", "--task", "nothing"]) == 1


def test_info_prints_every_field(capsys):
    assert main(["weights", "info", "hrnet_w48.cityscapes_ocr_official"]) == 0
    out = capsys.readouterr().out
    for text in ("url: https://github.com/hsfzxjy/models.storage/releases/download/HRNet-OCR/"
                 "hrnet_ocr_cs_8162_torch11.pth", "head: ocr", "align_corners: True", "classes: cityscapes",
                 "metric: mIoU 81.6 on Cityscapes val", "licence: MIT", "cache: "):
        assert text in out
    assert main(["weights", "info", "hrnet_w48.cityscapes_orc_official"]) == 5
    assert "closest: hrnet_w48.cityscapes_ocr_official" in capsys.readouterr().err


def test_download_then_place(served_entry, capsys, tmp_path):
    entry, root = served_entry
    assert main(["weights", "download", entry.name, "--timeout", "5"]) == 0
    assert capsys.readouterr().out.strip() == str(entry.cache_path)
    manual = "hrnet_w32.coco_256x192_official"
    assert main(["weights", "download", manual]) == 5
    assert f"hrnet weights place {manual} FILE" in capsys.readouterr().err
    assert main(["weights", "place", entry.name, str(tmp_path / "missing.pth")]) == 5
    assert main(["weights", "place", manual, str(root / entry.file_name)]) == 0
    out = capsys.readouterr().out
    assert str(hrnet.get_weights(manual).cache_path) in out and "no published hash" in out
