"""Speed and activation memory of hrnet's classification models against timm's, in one process.

    python benchmarks/backbone.py --arch hrnet_w18_small_v1 hrnet_w18 --batch 8 --size 224

Both models get the same weights (timm's keys are the official ones). Runs alternate between the
two so that machine load hits both alike; the table reports medians and hrnet/timm ratios.
Activation memory is the bytes autograd saves for backward (exact, device independent); on CUDA
the peak allocated memory of a training step is reported too.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import hrnet
from hrnet.checkpoints import canonical_key, load_state_dict

TIMM_NAMES = {"hrnet_w18_small_v1": "hrnet_w18_small", "hrnet_w18_small_v2": "hrnet_w18_small_v2"}


def saved_activation_bytes(model: torch.nn.Module, x: torch.Tensor) -> int:
    total = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).sum().backward()
    return total


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def bench(arch: str, batch: int, size: int, repeats: int, device: torch.device) -> dict[str, float]:
    import timm

    ours = hrnet.create_model(arch).to(device)
    peer = timm.create_model(TIMM_NAMES.get(arch, arch), pretrained=False).to(device)
    load_state_dict(ours, {canonical_key(k): v for k, v in peer.state_dict().items()}, source=f"timm {arch}")
    x = torch.randn(batch, 3, size, size, device=device)
    results: dict[str, list[float]] = {f"{m}_{p}": [] for m in ("hrnet", "timm") for p in ("infer", "train")}
    models = {"hrnet": ours, "timm": peer}

    def infer(model):
        model.eval()
        with torch.no_grad():
            model(x)

    def train(model):
        model.train()
        model(x).sum().backward()
        model.zero_grad(set_to_none=True)

    for name, model in models.items():  # warm-up
        infer(model), train(model)
    for _ in range(repeats):
        for name, model in models.items():
            results[f"{name}_infer"].append(timed(lambda: infer(model), device))
            results[f"{name}_train"].append(timed(lambda: train(model), device))
    row = {key: statistics.median(values) for key, values in results.items()}
    for name, model in models.items():
        model.train()
        row[f"{name}_act_mb"] = saved_activation_bytes(model, x) / 2**20
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            train(model)
            row[f"{name}_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", nargs="+", default=["hrnet_w18_small_v1", "hrnet_w18"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"batch {args.batch}, input {args.size}x{args.size}, median of {args.repeats}\n")
    print("| model | infer hrnet (s) | infer timm (s) | ratio | train step hrnet (s) | train step timm (s) | ratio "
          "| saved activations hrnet / timm (MiB) |")
    print("|---|---|---|---|---|---|---|---|")
    for arch in args.arch:
        r = bench(arch, args.batch, args.size, args.repeats, device)
        print(f"| {arch} | {r['hrnet_infer']:.3f} | {r['timm_infer']:.3f} | {r['hrnet_infer'] / r['timm_infer']:.2f} "
              f"| {r['hrnet_train']:.3f} | {r['timm_train']:.3f} | {r['hrnet_train'] / r['timm_train']:.2f} "
              f"| {r['hrnet_act_mb']:.0f} / {r['timm_act_mb']:.0f} |")


if __name__ == "__main__":
    main()
