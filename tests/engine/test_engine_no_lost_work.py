"""No lost work, clear messages: Ctrl-C (a real SIGINT to a process group) saves and resumes
exactly; an evaluation failure costs no training; stale temporaries are removed; --resume and
restarts that would lose work are refused in one line; progress lines without a terminal; the
end-of-training summary after a step limit."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from hrnet.cli import main
from hrnet.engine import fit, load_config, load_run_checkpoint
from hrnet.engine.progress import ProgressLines
from hrnet.engine.testing import make_synthetic_folder, tiny_classification_recipe, write_recipe
from hrnet.errors import EXIT_INTERRUPTED, ConfigError, DataError

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _log(path: Path) -> list[dict]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("time", "rate")} for r in records]


def _same_weights(a: Path, b: Path) -> None:
    wa, wb = load_run_checkpoint(a)["model"], load_run_checkpoint(b)["model"]
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


# The training step `PAUSE_AT` writes a marker file and waits until the engine has seen a SIGINT
# (sent by the test to the whole process group, as a terminal's Ctrl-C is), then completes.
PAUSER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from hrnet.engine import interrupt
    from hrnet.tasks.classification import ClassificationTask
    step, calls = ClassificationTask.train_step, [0]
    def train_step(self, *args):
        calls[0] += 1
        if calls[0] == int(os.environ["PAUSE_AT"]):
            Path(os.environ["MARKER"]).write_text("paused")
            deadline = time.time() + 120
            while not interrupt.requested() and time.time() < deadline:
                time.sleep(0.01)
        return step(self, *args)
    ClassificationTask.train_step = train_step
    from hrnet.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def test_sigint_saves_the_step_and_resumes_exactly(tmp_path, stripes):
    recipe = tiny_classification_recipe(*stripes, train={"deterministic": True, "epochs": 2, "workers": 1})
    path = write_recipe(tmp_path / "r.yaml", recipe)
    full = subprocess.run([sys.executable, "-m", "hrnet", "train", "-c", str(path), "-o", str(tmp_path / "full")],
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert full.returncode == 0, full.stderr
    script, marker = tmp_path / "pauser.py", tmp_path / "paused"
    script.write_text(PAUSER)
    # 24 images, batch 8: 3 steps an epoch; the 4th step is the first of epoch 2.
    process = subprocess.Popen([sys.executable, str(script), "train", "-c", str(path), "-o", str(tmp_path / "run")],
                               env={**_env(), "PAUSE_AT": "4", "MARKER": str(marker)}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 240
    while not marker.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), process.communicate(timeout=60)
    os.killpg(process.pid, signal.SIGINT)  # main process and DataLoader worker, as Ctrl-C does
    _, stderr = process.communicate(timeout=240)
    assert process.returncode == EXIT_INTERRUPTED, stderr
    said = [line for line in stderr.splitlines() if "interrupt" in line.lower()]
    assert len(said) == 1 and "step 4" in said[0], stderr
    assert f"hrnet train --resume --out-dir {tmp_path / 'run'}" in said[0]
    assert "Traceback" not in stderr
    state = load_run_checkpoint(tmp_path / "run" / "last.pth")
    assert (state["epoch"], state["epoch_step"], state["step"]) == (1, 1, 4)
    again = subprocess.run([sys.executable, "-m", "hrnet", "train", "--resume", "-o", str(tmp_path / "run")],
                           env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    _same_weights(tmp_path / "full" / "last.pth", tmp_path / "run" / "last.pth")
    _same_weights(tmp_path / "full" / "best.pth", tmp_path / "run" / "best.pth")
    assert _log(tmp_path / "full" / "log.jsonl") == _log(tmp_path / "run" / "log.jsonl")


def test_an_evaluation_failure_costs_no_training(tmp_path, stripes):
    val = shutil.copytree(stripes[1], tmp_path / "val")
    victim = sorted((val / "stripes_v").iterdir())[0]
    good = victim.read_bytes()
    victim.write_bytes(b"not a png at all")  # exists (passes the up-front check), fails when read
    recipe = tiny_classification_recipe(stripes[0], val, train={"deterministic": True, "epochs": 2})
    path = write_recipe(tmp_path / "r.yaml", recipe)
    with pytest.raises(DataError, match=victim.name):
        fit(load_config(path), tmp_path / "run")
    state = load_run_checkpoint(tmp_path / "run" / "last.pth")
    assert (state["step"], state["epoch"], state["epoch_end_pending"]) == (3, 0, True)
    assert not (tmp_path / "run" / "best.pth").exists()
    victim.write_bytes(good)
    fit(load_config(path), tmp_path / "run", resume=True)  # evaluates epoch 1, then trains epoch 2
    fit(load_config(path), tmp_path / "full")
    _same_weights(tmp_path / "full" / "last.pth", tmp_path / "run" / "last.pth")
    assert _log(tmp_path / "full" / "log.jsonl") == _log(tmp_path / "run" / "log.jsonl")


def test_stale_temporaries_of_a_killed_save_are_removed(tmp_path, stripes):
    path = write_recipe(tmp_path / "r.yaml", tiny_classification_recipe(*stripes, train={"max_steps": 1}))
    run = tmp_path / "run"
    fit(load_config(path), run)
    stale = [run / ".last.pth.k3j2x9.tmp", run / ".best.pth.a1b2c3.tmp", run / "log.jsonl.tmp"]
    for file in stale:
        file.write_bytes(b"half a checkpoint")
    keep = run / "notes.tmp"
    keep.write_text("not ours")
    fit(load_config(path, ["train.max_steps=2"]), run, resume=True)
    assert not any(file.exists() for file in stale) and keep.exists()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / ".last.pth.zz.tmp").write_bytes(b"")
    fit(load_config(path), fresh)
    assert not (fresh / ".last.pth.zz.tmp").exists() and (fresh / "last.pth").exists()


def _one_line_error(capsys, args: list[str]) -> str:
    assert main(args) == ConfigError.exit_code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_resume_and_restart_that_would_lose_work_are_refused(tmp_path, stripes, capsys):
    path = write_recipe(tmp_path / "r.yaml", tiny_classification_recipe(*stripes, train={"max_steps": 1}))
    empty = tmp_path / "empty"
    empty.mkdir()
    err = _one_line_error(capsys, ["train", "-c", str(path), "-o", str(empty), "--resume"])
    assert "holds no last.pth" in err and "without --resume" in err
    err = _one_line_error(capsys, ["train", "-o", str(empty), "--resume"])
    assert "holds no last.pth" in err
    assert not (empty / "last.pth").exists() and not list(empty.iterdir())  # no silent fresh run
    run = tmp_path / "run"
    assert main(["train", "-c", str(path), "-o", str(run)]) == 0
    capsys.readouterr()
    (run / "last.pth").unlink()
    err = _one_line_error(capsys, ["train", "-c", str(path), "-o", str(run)])
    assert "best.pth" in err and "no last.pth" in err
    assert (run / "best.pth").exists()  # not overwritten
    err = _one_line_error(capsys, ["train", "-c", str(path), "-o", str(run), "--resume"])
    assert "has best.pth but no last.pth" in err


def test_progress_lines_with_a_fake_clock():
    ticks = iter([0.0, 4.0, 11.0, 12.0, 25.0])
    lines = []

    class Sink:
        def write(self, text):
            lines.append(text) if text.strip() else None

        def flush(self):
            pass

    bar = ProgressLines(range(4), total=4, desc="train epoch 1/3", unit="step", every_seconds=10.0,
                        run_done=8, run_total=20, clock=lambda: next(ticks), stream=Sink())
    for index in bar:
        bar.set_postfix(loss=f"{index / 10:.4f}")
    # Lines at t = 11 (2 steps, 5.5 s a step) and t = 25 (4 steps, 6.25 s a step).
    assert lines == [
        "train epoch 1/3: 2/4 steps (50%), 5.50 s/step, eta 11s; run 10/20 steps, eta 55s; loss 0.1000",
        "train epoch 1/3: 4/4 steps (100%), 6.25 s/step, eta 0s; run 12/20 steps, eta 50s; loss 0.3000",
    ]


def test_training_without_a_terminal_prints_progress_lines(tmp_path, stripes, capsys):
    recipe = tiny_classification_recipe(*stripes, train={"progress_every_seconds": 1e-9, "epochs": 1})
    fit(load_config(write_recipe(tmp_path / "r.yaml", recipe)), tmp_path / "run")
    err = capsys.readouterr().err
    assert "train epoch 1/1: 1/3 steps (33%)" in err and "train epoch 1/1: 3/3 steps (100%)" in err
    assert "eval: 1/1 batches (100%)" in err and "eta" in err
    recipe["train"]["progress_every_seconds"] = 0
    fit(load_config(write_recipe(tmp_path / "r.yaml", recipe)), tmp_path / "quiet")
    assert "steps (" not in capsys.readouterr().err


def test_the_summary_after_a_step_limit_names_the_partial_epoch(tmp_path, stripes, capsys):
    path = write_recipe(tmp_path / "r.yaml", tiny_classification_recipe(*stripes))
    assert main(["train", "-c", str(path), "-o", str(tmp_path / "a"), "--set", "train.max_steps=4"]) == 0
    out = capsys.readouterr().out
    assert "trained 4 steps (1 complete epoch and 1 of the 3 steps of epoch 2), stopped by train.max_steps" in out
    assert "epoch 0" not in out
    assert main(["train", "-c", str(path), "-o", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "trained 6 steps (2 epochs); best top1" in out


def test_val_data_is_checked_before_the_first_step(tmp_path, stripes):
    data = make_synthetic_folder(tmp_path / "val", per_class=2, seed=5)
    listing = tmp_path / "val.json"
    listing.write_text(json.dumps([{"path": str(p), "label": p.parent.name} for p in sorted(data.rglob("*.png"))]
                                  + [{"path": str(data / "stripes_h" / "gone.png"), "label": "stripes_h"}]))
    recipe = tiny_classification_recipe(stripes[0], listing)
    with pytest.raises(DataError, match=r"val\.json: 1 listed image\(s\) do not exist \(e\.g\. .*gone\.png"):
        fit(load_config(write_recipe(tmp_path / "r.yaml", recipe)), tmp_path / "run")
    assert not (tmp_path / "run" / "last.pth").exists()
