import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "camvid.py"


@pytest.mark.slow
def test_camvid_benchmark_script_runs_within_a_budget_and_reports(camvid_dir, tmp_path):
    spec = importlib.util.spec_from_file_location("camvid_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "bench"
    assert module.main(["--root", str(camvid_dir), "--minutes", "0.2", "--out-dir", str(out), "--threads", "1",
                        "--hold-out", "0001TP_", "--set", "data.max_samples=8", "train.batch_size=4",
                        "data.crop_size=[96,96]", "train.workers=0", "train.ema={decay: 0.99}"]) == 0
    result = json.loads((out / "benchmark.json").read_text())
    assert len(result["per_class_IoU"]) == 11 and 0 <= result["val_mIoU"] <= 100
    assert result["protocol"] == "held-out train sequence 0001TP_" and result["ema"]
    assert result["cpu_minutes"] > 0 and result["peak_memory_mb"] > 0 and result["steps"] >= 2
    assert result["planned_step_seconds"] > 0 and result["budget_clock"] == "process"
    assert set(result["test_variants"]) == {name for name, _ in module.VARIANTS}
