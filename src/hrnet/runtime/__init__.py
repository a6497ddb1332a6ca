"""Fast inference: one argument picks eager PyTorch, ONNX Runtime or OpenVINO, float32 or int8.

    from hrnet.runtime import load_runtime, model_device
    fast = load_runtime(model, runtime="openvino", precision="int8", calibration=batches)
    logits = fast(images)                 # what model.eval()(images) returns; images on model_device(fast)

    fast = hrnet.optimize(model.cuda(), dtype=torch.float16)    # the eager fast path (GPU or CPU)

Runtimes and precisions (`PRECISIONS`): torch fp32/fp16/bf16 (BatchNorm folded, channels-last,
autocast), onnxruntime and openvino fp32/int8 on the CPU. Exports are cached (see
`hrnet.runtime.cache`); int8 is static post-training quantization in QDQ form (see
`hrnet.runtime.quantize`). How far each may differ from eager PyTorch: `TOLERANCES`.

Finding the device of a model that may be a runtime module: `model_device(model)` (cpu for
onnxruntime / OpenVINO modules and detectors holding one, else the first parameter's device).
`next(model.parameters()).device` also works (a runtime module holds a zero-size cpu parameter).
"""

from __future__ import annotations

from .names import PRECISIONS, RUNTIMES

_LAZY = {name: module for module, names in {
    "load": ("RuntimeReport", "detector_inputs", "load_runtime", "model_device", "task_of"),
    "modules": ("OnnxRuntimeModule", "OpenVINOModule", "RuntimeModule"),
    "fastpath": ("fuse", "optimize"),
    "parity": ("COLLAPSE", "FP32_TOLERANCE", "TORCH_TOLERANCES", "ParityCheck"),
}.items() for name in names}  # imported on first use (they need torch): the command line stays light


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    if name == "TOLERANCES":
        return _tolerances()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _tolerances() -> dict[str, str]:
    """The tolerances the tests hold each path to, against the eager float32 model (relative error:
    max |a - b| / max |b|; int8: output correlation and task agreement on real images)."""
    from .parity import COLLAPSE, FP32_TOLERANCE, TORCH_TOLERANCES

    return {
        "onnxruntime fp32": f"relative error <= {FP32_TOLERANCE:.0e} (or 10x float32 rounding)",
        "openvino fp32": f"relative error <= {FP32_TOLERANCE:.0e} (or 10x float32 rounding)",
        "torch fp32 (fused, channels-last)": f"relative error <= {TORCH_TOLERANCES['fp32']:.0e}",
        "torch fp16 autocast": f"relative error <= {TORCH_TOLERANCES['fp16']:.0e}",
        "torch bf16 autocast": f"relative error <= {TORCH_TOLERANCES['bf16']:.0e}",
        "int8 (both runtimes)": f"reported; collapsed below correlation {COLLAPSE['correlation']} or agreement "
                                f"{100 * COLLAPSE['agreement']:.0f}%",
    }


__all__ = [
    "COLLAPSE", "FP32_TOLERANCE", "OnnxRuntimeModule", "OpenVINOModule", "PRECISIONS", "ParityCheck", "RUNTIMES",
    "RuntimeModule", "RuntimeReport", "TOLERANCES", "TORCH_TOLERANCES", "detector_inputs", "fuse", "load_runtime",
    "model_device", "optimize", "task_of",
]
