import pytest

import hrnet
from hrnet.cli import main


def test_list_prints_every_variant(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "hrnet_w18_small_v1" in out and "128.1M" in out


def test_info_prints_both_mac_conventions(capsys):
    assert main(["info", "hrnet_w32", "--task", "pose", "--input", "256x192"]) == 0
    out = capsys.readouterr().out
    assert "28.5M" in out and "7.12 G (official" in out and "7.65 G (/ 1e9)" in out


def test_bad_input_size_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as error:
        main(["info", "hrnet_w32", "--input", "256by192"])
    assert error.value.code == 2 and "HxW" in capsys.readouterr().err


def test_unknown_checkpoint_is_one_clear_line(tmp_path, capsys):
    assert main(["export", "hrnet_w18_small_v1", "--checkpoint", str(tmp_path / "none.pth"), "-o",
                 str(tmp_path / "m.onnx")]) == hrnet.CheckpointError.exit_code
    err = capsys.readouterr().err
    assert "none.pth does not exist" in err and "Traceback" not in err
