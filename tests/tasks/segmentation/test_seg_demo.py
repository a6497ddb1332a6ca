import re

from hrnet.cli import main
from hrnet.tasks.segmentation.demo import MIOU_FLOOR_SHORT


def test_demo_trains_above_the_short_floor_and_draws(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out-dir", str(out), "--epochs", "6", "--train-images", "160", "--val-images", "32",
                 "--size", "64", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    miou = float(re.search(r"val mIoU ([\d.]+)", printed).group(1))
    assert miou >= MIOU_FLOOR_SHORT
    for path in (out / "overlays.png", out / "run" / "curves.png", out / "recipe.yaml"):
        assert path.is_file() and str(path) in printed
    assert (out / "run" / "best.pth").is_file() and (out / "predictions" / "00000_overlay.png").is_file()
    assert "hrnet train --config" in printed and "hrnet predict --checkpoint" in printed
