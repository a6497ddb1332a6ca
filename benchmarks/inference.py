"""Inference speed of eager PyTorch, its fast path, ONNX Runtime and OpenVINO (fp32 and int8), in one process.

    nice -n 5 python benchmarks/inference.py --cases cls_w18 pose_w32 seg_w18s seg_w48 --batch 1 8 --threads 1 2
    python benchmarks/inference.py --cases cls_w18 --batch 1 --threads 1 --repeats 5        # a quick look
    python benchmarks/inference.py --camvid-checkpoint runs/camvid/best.pth --pose-checkpoint runs/pose/best.pth \
        --cases                                                                  # accuracy columns only

Every runner sees the same random-weight model (speed does not depend on the weights; int8 is
calibrated on real photos, or CamVid frames for segmentation, with the task's own pre-processing).
Runs alternate between the runners so that machine load hits all alike; the tables give medians,
the ratio to eager PyTorch, and the fraction of the machine's float32 matmul peak that each runner
reaches (GFLOP/s from the model's multiply-adds, `hrnet.complexity`, against a large torch / numpy
matmul at the same thread count, measured in this process). timm's HRNet is a second eager peer for
classification. On CUDA: eager, fused + channels-last + fp16, torch.compile and TensorRT through
ONNX Runtime where installed, with peak memory. With trained checkpoints, the accuracy of int8
against float32: CamVid val mIoU and COCO-sample keypoint AP.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch

import hrnet
from hrnet.runtime import load_runtime, optimize

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CASES: dict[str, dict[str, Any]] = {
    "cls_w18": dict(arch="hrnet_w18", task="classification", size=(224, 224), num_classes=1000),
    "pose_w32": dict(arch="hrnet_w32", task="pose", size=(256, 192), num_classes=17),
    "seg_w18s": dict(arch="hrnet_w18_small_v1", task="segmentation", size=(360, 480), num_classes=11),
    # Batch 8 of W48 at 512x1024 takes minutes per forward on two cores: batch 1 only; calibrated at half size.
    "seg_w48": dict(arch="hrnet_w48", task="segmentation", size=(512, 1024), num_classes=19, max_batch=1,
                    calibration_size=(256, 512)),
}
CPU_RUNNERS = ("eager", "fused_cl", "timm", "ort_fp32", "ov_fp32", "ort_int8", "ov_int8")
CUDA_RUNNERS = ("eager", "fused_cl_fp16", "compile", "tensorrt")


def matmul_peak(threads: int, n: int = 2048, repeats: int = 5) -> float:
    """Measured float32 GFLOP/s of a large matrix product at `threads` torch threads (torch.mm only:
    numpy's BLAS keeps its own thread count and would overstate a one-thread peak)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def macs(case: dict[str, Any], batch: int) -> int:
    from hrnet.complexity import describe

    return describe(case["arch"], task=case["task"], input_size=case["size"], num_classes=case["num_classes"]).macs \
        * batch


def calibration(case: dict[str, Any], limit: int) -> list[torch.Tensor]:
    from hrnet.runtime.calibration import calibration_batches, calibration_images

    size = case.get("calibration_size", case["size"])
    if case["task"] == "segmentation" and (SHARED / "camvid" / "train").is_dir():
        files = calibration_images(SHARED / "camvid" / "train", limit=limit)
    else:
        files = calibration_images(SHARED / "photos", limit=limit)
    return calibration_batches(case["task"], files, input_size=size, batch_size=4)


def timm_peer(model: torch.nn.Module, arch: str) -> torch.nn.Module | None:
    try:
        import timm
    except ImportError:
        return None
    from hrnet.checkpoints import canonical_key, load_state_dict

    peer = timm.create_model(arch, pretrained=False).eval()
    load_state_dict(model, {canonical_key(k): v for k, v in peer.state_dict().items()}, source=f"timm {arch}")
    return peer


def cpu_runners(name: str, case: dict[str, Any], model: torch.nn.Module, threads: int, wanted: tuple[str, ...],
                calib: list[torch.Tensor], cache: Path | None) -> dict[str, Callable]:
    runners: dict[str, torch.nn.Module] = {"eager": model}
    if "fused_cl" in wanted:
        runners["fused_cl"] = optimize(model, channels_last=True)
    if "timm" in wanted and case["task"] == "classification":
        peer = timm_peer(model, case["arch"])
        if peer is not None:
            runners["timm"] = peer
    for key in ("ort_fp32", "ov_fp32", "ort_int8", "ov_int8"):
        if key not in wanted:
            continue
        runtime = {"ort": "onnxruntime", "ov": "openvino"}[key.split("_")[0]]
        precision = key.split("_")[1]
        try:
            module = load_runtime(model, runtime=runtime, precision=precision, cache=cache, threads=threads,
                                  calibration=calib if precision == "int8" else None, name=f"bench-{name}")
        except hrnet.errors.DependencyError as error:
            print(f"  {key}: skipped ({error})")
            continue
        print("  " + str(module.report).replace("\n", "\n  "))
        runners[key] = module
    return runners


def interleaved(runners: dict[str, Callable], x: torch.Tensor, repeats: int, sync: Callable = lambda: None
                ) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in runners}
    with torch.no_grad():
        for run in runners.values():  # warm-up (and OpenVINO's first-shape work)
            run(x)
        sync()
        for _ in range(repeats):
            for key, run in runners.items():
                sync()
                start = time.perf_counter()
                run(x)
                sync()
                times[key].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_cpu(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for threads in args.threads:
        peak = matmul_peak(threads)
        print(f"\nthreads {threads}: float32 matmul peak {peak:.1f} GFLOP/s")
        for name in args.cases:
            case = CASES[name]
            torch.set_num_threads(threads)
            torch.manual_seed(0)
            model = hrnet.create_model(case["arch"], task=case["task"], num_classes=case["num_classes"]).eval()
            calib = calibration(case, args.calibration_images) if any("int8" in r for r in args.runners) else []
            print(f"{name}: {case['arch']} {case['task']} {case['size'][0]}x{case['size'][1]}")
            runners = cpu_runners(name, case, model, threads, tuple(args.runners), calib, args.cache)
            for batch in args.batch:
                if batch > case.get("max_batch", batch):
                    continue
                x = torch.randn(batch, 3, *case["size"])
                medians = interleaved(runners, x, args.repeats)
                flops = 2 * macs(case, batch)
                for key, seconds in medians.items():
                    rows.append(dict(case=name, batch=batch, threads=threads, runner=key, seconds=seconds,
                                     speedup=medians["eager"] / seconds, gflops=flops / seconds / 1e9,
                                     peak_fraction=flops / seconds / 1e9 / peak, peak_gflops=peak))
                print_rows([r for r in rows if r["case"] == name and r["batch"] == batch and r["threads"] == threads])
    return rows


def bench_cuda(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    device = torch.device("cuda")
    for name in args.cases:
        case = CASES[name]
        torch.manual_seed(0)
        model = hrnet.create_model(case["arch"], task=case["task"], num_classes=case["num_classes"]).eval().to(device)
        runners: dict[str, Callable] = {"eager": model,
                                        "fused_cl_fp16": optimize(model, channels_last=True, dtype=torch.float16)}
        if "compile" in args.runners:
            runners["compile"] = optimize(model, channels_last=True, dtype=torch.float16, compile=True)
        tensorrt = tensorrt_runner(name, model, args.cache)
        if tensorrt is not None:
            runners["tensorrt"] = tensorrt
        for batch in args.batch:
            x = torch.randn(batch, 3, *case["size"], device=device)
            medians = interleaved(runners, x, args.repeats, sync=torch.cuda.synchronize)
            flops = 2 * macs(case, batch)
            for key, run in runners.items():
                torch.cuda.reset_peak_memory_stats()
                with torch.no_grad():
                    run(x)
                rows.append(dict(case=name, batch=batch, threads=0, runner=key, seconds=medians[key],
                                 speedup=medians["eager"] / medians[key], gflops=flops / medians[key] / 1e9,
                                 peak_memory_mb=torch.cuda.max_memory_allocated() / 2**20))
            print_rows([r for r in rows if r["case"] == name and r["batch"] == batch])
    return rows


def tensorrt_runner(name: str, model: torch.nn.Module, cache: Path | None) -> Callable | None:
    """TensorRT through ONNX Runtime's TensorRT provider (fp16), when that provider is installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    if "TensorrtExecutionProvider" not in onnxruntime.get_available_providers():
        print("  tensorrt: skipped (onnxruntime has no TensorrtExecutionProvider here)")
        return None
    exported = load_runtime(model.cpu(), runtime="onnxruntime", cache=cache, name=f"bench-{name}", check=False)
    model.cuda()
    session = onnxruntime.InferenceSession(str(exported.report.onnx), providers=[
        ("TensorrtExecutionProvider", {"trt_fp16_enable": True}), "CUDAExecutionProvider"])
    return lambda x: session.run(None, {"images": x.cpu().numpy()})


def print_rows(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    first = rows[0]
    print(f"\n| {first['case']} batch {first['batch']} threads {first['threads']} | median (s) | vs eager | GFLOP/s "
          "| of matmul peak |" if "peak_fraction" in first else
          f"\n| {first['case']} batch {first['batch']} | median (s) | vs eager | GFLOP/s | peak memory (MiB) |")
    print("|---|---|---|---|---|")
    for r in rows:
        last = f"{100 * r['peak_fraction']:.0f}%" if "peak_fraction" in r else f"{r['peak_memory_mb']:.0f}"
        print(f"| {r['runner']} | {r['seconds']:.4f} | {r['speedup']:.2f}x | {r['gflops']:.1f} | {last} |")


def accuracy(args: argparse.Namespace) -> list[dict[str, Any]]:
    """int8 against float32 (eager and runtime) on a trained model's val set."""
    from hrnet.engine.runs import load_for_inference
    from hrnet.engine.trainer import build_loader, evaluate
    from hrnet.runtime.calibration import calibration_batches, calibration_images

    jobs = []
    if args.camvid_checkpoint:
        jobs.append(("camvid", args.camvid_checkpoint, [f"data.root={SHARED / 'camvid'}"], SHARED / "camvid" / "train",
                     "mIoU"))
    if args.pose_checkpoint:
        coco = SHARED / "coco_kpt"
        jobs.append(("coco_sample", args.pose_checkpoint, [f"data.val_annotations={coco / 'test_coco.json'}",
                                                           f"data.val_images={coco}", "data.val_boxes=null"],
                     coco, "AP"))
    rows = []
    cpu = torch.device("cpu")
    torch.set_num_threads(args.threads[0])
    for label, checkpoint, overrides, calib_dir, metric in jobs:
        config, task, model = load_for_inference(checkpoint, None, overrides + ["train.progress=false"], cpu)
        loader, _ = build_loader(task, config, "val", cpu)
        files = calibration_images(calib_dir, limit=args.calibration_images)
        calib = calibration_batches(config.task, files, data=config.data, batch_size=4)
        results = {"eager fp32": evaluate(model, task, loader, cpu)}
        for runtime in ("onnxruntime", "openvino"):
            for precision in ("fp32", "int8"):
                try:
                    fast = load_runtime(model, runtime=runtime, precision=precision, calibration=calib,
                                        threads=args.threads[0], name=f"accuracy-{label}")
                except hrnet.errors.DependencyError:
                    continue
                results[f"{runtime} {precision}"] = evaluate(fast, task, loader, cpu)
        base = results["eager fp32"][metric]
        print(f"\n| {label} ({checkpoint}) | {metric} | change vs eager fp32 |\n|---|---|---|")
        for key, values in results.items():
            print(f"| {key} | {values[metric]:.4f} | {values[metric] - base:+.4f} |")
            rows.append(dict(dataset=label, runner=key, metric=metric, value=values[metric], change=values[metric] - base))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--runners", nargs="+", default=list(CPU_RUNNERS) + ["compile"],
                        help=f"CPU: {' '.join(CPU_RUNNERS)}; CUDA: {' '.join(CUDA_RUNNERS)}")
    parser.add_argument("--calibration-images", type=int, default=8)
    parser.add_argument("--cache", type=Path, default=None, help="export cache (default: hrnet's cache)")
    parser.add_argument("--camvid-checkpoint", default=None, help="a trained CamVid run checkpoint (accuracy)")
    parser.add_argument("--pose-checkpoint", default=None, help="a trained COCO pose run checkpoint (accuracy)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, default=None, help="also write all rows to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    print(f"torch {torch.__version__}, device {args.device}, median of {args.repeats}, batches {args.batch}, "
          f"threads {args.threads}")
    rows = bench_cuda(args) if args.device.startswith("cuda") else bench_cpu(args) if args.cases else []
    rows += accuracy(args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
