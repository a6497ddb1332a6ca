"""Training step time, NCHW against NHWC (`train.channels_last`), in one process.

    python benchmarks/train_step.py [--recipe RECIPE] [--threads 1 2] [--steps 8] [--rounds 2]
                                    [--set KEY=VALUE ...]

Builds the recipe's run twice (`train.channels_last` false and true: the same model, optimizer and
loss as `hrnet train`), draws real batches from its training loader once, and times forward,
backward and optimizer step on them, the two layouts alternating `--rounds` times so that drift of
the machine falls on both. Data loading is not timed. Prints the median step time of each layout,
their ratio and the largest loss difference on the same batches (float32 rounding only).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "segmentation" / "camvid_hrnet_w18_small_v1_small_data.yaml"
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "camvid"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default=str(RECIPE))
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per layout and round (one more warms up)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="recipe overrides (the default recipe also gets data.root=../shared/data/camvid)")
    return parser.parse_args(argv)


def timed_steps(run, batches: list, steps: int) -> tuple[list[float], list[float]]:
    """Seconds and loss of `steps` optimizer steps of `run` on `batches` (after one untimed)."""
    from hrnet.engine.pieces import to_channels_last

    seconds, losses = [], []
    for i in range(steps + 1):
        batch = batches[i % len(batches)]
        batch = to_channels_last(batch) if run.config.train.channels_last else batch
        started = time.perf_counter()
        loss, _ = run.task.train_step(run.model, batch, run.device)
        loss.backward()
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)
        if i > 0:
            seconds.append(time.perf_counter() - started)
            losses.append(loss.item())
    return seconds, losses


def measure(args: argparse.Namespace, threads: int, work: Path) -> dict[str, float]:
    from hrnet.engine import load_config
    from hrnet.engine.trainer import prepare

    torch.set_num_threads(threads)
    layouts = {"NCHW": "false", "NHWC": "true"}
    times: dict[str, list[float]] = {name: [] for name in layouts}
    losses: dict[str, list[float]] = {name: [] for name in layouts}
    batches = None
    defaults = [f"data.root={DEFAULT_ROOT}"] if Path(args.recipe) == RECIPE else []
    for round_ in range(args.rounds):
        for name, flag in layouts.items():
            overrides = [*defaults, *args.set, f"train.channels_last={flag}", "eval.every=0",
                         "train.time_budget_minutes=null"]
            torch.manual_seed(0)
            run = prepare(load_config(args.recipe, overrides), work / f"{threads}-{round_}-{name}")
            if batches is None:
                loader = iter(run.train_loader)
                batches = [next(loader) for _ in range(min(args.steps, len(run.train_loader)))]
            seconds, values = timed_steps(run, batches, args.steps)
            times[name] += seconds
            if round_ == 0:  # the first round of each layout saw the same batches from the same weights
                losses[name] = values
    nchw, nhwc = statistics.median(times["NCHW"]), statistics.median(times["NHWC"])
    difference = max(abs(a - b) for a, b in zip(losses["NCHW"], losses["NHWC"]))
    return {"threads": threads, "NCHW_s": nchw, "NHWC_s": nhwc, "speedup": nchw / nhwc, "loss_diff": difference}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"{Path(args.recipe).name}, {args.steps} steps x {args.rounds} rounds per layout")
    print("| threads | NCHW s/step | NHWC s/step | NHWC speed-up | largest loss difference |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        for threads in args.threads:
            row = measure(args, threads, Path(work))
            print(f"| {row['threads']} | {row['NCHW_s']:.3f} | {row['NHWC_s']:.3f} | {row['speedup']:.2f}x | "
                  f"{row['loss_diff']:.1e} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
