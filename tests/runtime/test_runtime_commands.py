"""`hrnet export` (ONNX / OpenVINO, int8, --eval) and `hrnet eval --runtime` on a tiny trained run."""

import argparse
import json

import pytest

from hrnet.cli import main, run_command
from hrnet.engine.config import load_config
from hrnet.engine.testing import make_synthetic_folder, tiny_classification_recipe, write_recipe
from hrnet.engine.trainer import fit
from hrnet.runtime.commands import add_commands

pytest.importorskip("onnxruntime")


def export(argv: list[str]) -> int:
    """Run the `hrnet export` parser of hrnet.runtime.commands (what cli.py mounts)."""
    parser = argparse.ArgumentParser(prog="hrnet")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", *argv])
    return run_command(args.func, args, command="export", verbose=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A one-epoch classification run of the tiny HRNet on two synthetic classes."""
    root = tmp_path_factory.mktemp("run")
    train = make_synthetic_folder(root / "train", per_class=8, seed=0)
    val = make_synthetic_folder(root / "val", per_class=4, seed=1)
    recipe = tiny_classification_recipe(train, val, train={"epochs": 1})
    fit(load_config(write_recipe(root / "r.yaml", recipe)), root / "run")
    return root / "run" / "best.pth", val


def test_export_int8_with_eval_prints_checks_kept_ops_and_metrics(run, tmp_path, capsys):
    checkpoint, val = run
    code = export(["--checkpoint", str(checkpoint), "--int8", "--calibrate", str(val), "--eval",
                   "-o", str(tmp_path / "model.onnx"), "--input", "32x32"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "onnxruntime fp32 vs torch eager" in out and "onnxruntime int8 vs torch eager, calibration input" in out
    assert "operators kept in float32:" in out and f"wrote {tmp_path / 'model.onnx'}" in out
    assert "top1: eager" in out and "runtime" in out and "change" in out
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["precision"] == "int8" and meta["calibration_batches"] >= 1
    # Exports live next to the weights, and a second export re-uses them.
    assert (checkpoint.parent / "exports").is_dir()
    assert export(["--checkpoint", str(checkpoint), "-o", str(tmp_path / "again.onnx")]) == 0
    assert "exported" not in capsys.readouterr().out.split("wrote")[0]


def test_export_int8_calibrates_on_the_runs_own_val_inputs(run, tmp_path, capsys):
    checkpoint, _ = run
    code = export(["--checkpoint", str(checkpoint), "--int8", "--calibrate", "recipe:val", "--calibration-limit", "6",
                   "-o", str(tmp_path / "model.onnx")])
    assert code == 0, capsys.readouterr().out
    meta = json.loads((tmp_path / "model.json").read_text())
    # The recipe's val transform (32x32 crops); one val batch (of 8, the training batch) cut at six samples.
    assert meta["calibration_shapes"] == ["[6, 3, 32, 32]"] and meta["calibration_batches"] == 1


def test_export_openvino_ir(run, tmp_path, capsys):
    pytest.importorskip("openvino")
    checkpoint, _ = run
    assert export(["--checkpoint", str(checkpoint), "--format", "openvino", "-o", str(tmp_path / "m.xml")]) == 0
    out = capsys.readouterr().out
    assert "openvino fp32 vs torch eager" in out
    assert (tmp_path / "m.xml").is_file() and (tmp_path / "m.bin").is_file() and (tmp_path / "m.json").is_file()


def test_export_arguments_are_checked(run, tmp_path, capsys):
    checkpoint, _ = run
    assert export(["--checkpoint", str(checkpoint), "--int8", "-o", str(tmp_path / "m.onnx")]) == 3
    assert "--int8 needs --calibrate SOURCE" in capsys.readouterr().err
    assert export(["--checkpoint", str(checkpoint), "--static", "-o", str(tmp_path / "m.onnx")]) == 3
    assert "--static fixes the export's size" in capsys.readouterr().err
    assert export(["hrnet_w18_small_v1", "--checkpoint", str(tmp_path / "none.pth"), "-o",
                   str(tmp_path / "m.onnx")]) != 0
    assert "none.pth does not exist" in capsys.readouterr().err


def test_eval_on_a_runtime_gives_the_eager_metrics(run, capsys):
    checkpoint, _ = run
    assert main(["eval", "--checkpoint", str(checkpoint), "--json"]) == 0
    eager = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["eval", "--checkpoint", str(checkpoint), "--runtime", "onnxruntime", "--json"]) == 0
    fast = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert fast["top1"] == eager["top1"]
    assert fast["loss"] == pytest.approx(eager["loss"], rel=1e-4)
    assert main(["eval", "--checkpoint", str(checkpoint), "--runtime", "onnxruntime", "--precision", "fp16"]) == 3
    assert "no precision 'fp16'" in capsys.readouterr().err
