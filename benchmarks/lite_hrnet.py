"""Lite-HRNet against HRNet-W32 (top-down pose, 17 joints): latency in eager PyTorch on CPU.

    OMP_NUM_THREADS=1 python benchmarks/lite_hrnet.py --size 256x192 --batch 1 --threads 1 --repeats 7

Random weights (speed does not depend on them). The models run interleaved in one process after two
warm-up passes each, so load on a shared machine hits them alike; the table gives the minimum and the
median of the repeats, the ratio to HRNet-W32 and, beside it, the ratio of multiply-adds
(`hrnet.complexity`): how far the measured gain falls short of the arithmetic one.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import hrnet
from hrnet.cli_args import parse_size
from hrnet.complexity import describe

MODELS = ("lite_hrnet_18", "lite_hrnet_30", "naive_lite_hrnet_18", "hrnet_w32")
PEER = "hrnet_w32"


def latencies(names: list[str], x: torch.Tensor, repeats: int) -> dict[str, list[float]]:
    models = {name: hrnet.create_model(name, task="pose", num_classes=17).eval() for name in names}
    times: dict[str, list[float]] = {name: [] for name in names}
    with torch.inference_mode():
        for model in models.values():
            model(x)
            model(x)
        for _ in range(repeats):
            for name, model in models.items():
                start = time.perf_counter()
                model(x)
                times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--size", type=parse_size, default=(256, 192), help="HxW")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = list(dict.fromkeys([*args.models, PEER]))
    times = latencies(names, torch.randn(args.batch, 3, *args.size), args.repeats)
    macs = {name: describe(name, task="pose", input_size=args.size, num_classes=17).macs for name in names}
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}, {args.size[0]}x{args.size[1]}, "
          f"{args.repeats} repeats\n")
    print(f"| model | GMACs | min (ms) | median (ms) | time ratio to {PEER} (min; median) | MAC ratio |")
    print("|---|---|---|---|---|---|")
    peer_min, peer_median = min(times[PEER]), statistics.median(times[PEER])
    for name in names:
        best, median = min(times[name]), statistics.median(times[name])
        print(f"| `{name}` | {macs[name] / 1e9:.3f} | {best * 1e3:.0f} | {median * 1e3:.0f} | "
              f"{best / peer_min:.2f}; {median / peer_median:.2f} | {macs[name] / macs[PEER]:.3f} |")


if __name__ == "__main__":
    main()
