"""nn.Modules that run an exported ONNX file with onnxruntime or OpenVINO, on the CPU.

A `RuntimeModule` behaves like the eval-mode model it was exported from: forward takes an
(N, 3, H, W) float tensor and returns what the model returns (one tensor; for a detector's
backbone the OrderedDict of pyramid levels). Inputs are read on the CPU and outputs come back on
the CPU. `module.device` is torch.device("cpu"); code that asks `next(model.parameters()).device`
gets the same answer from a zero-size placeholder parameter, but `hrnet.runtime.model_device(model)`
is the documented way. Moving the module to another device is a RuntimeFailure (the runtime runs
where it runs); `.to("cpu")` and dtype casts are accepted and change nothing.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import RuntimeFailure, require

log = logging.getLogger("hrnet")
MIN_SIZE = 32  # the smallest H and W a dynamic export takes (torch.export's lower bound, kept for both exporters)


class RuntimeModule(nn.Module):
    """Base class: input checks, numpy in and out, the CPU device. Subclasses implement `_run`."""

    runtime = "runtime"

    def __init__(self, path: Path, *, precision: str, output_names: list[str], dict_output: bool,
                 input_size: tuple[int, int] | None, threads: int):
        super().__init__()
        self.path = Path(path)
        self.precision = precision
        self.output_names = list(output_names)
        self.dict_output = dict_output
        self.input_size = tuple(input_size) if input_size is not None else None
        self.threads = threads
        self.device = torch.device("cpu")
        self.report: Any = None  # the RuntimeReport of load_runtime
        # Zero-size placeholder: `next(model.parameters()).device` keeps working (it says cpu).
        self.device_anchor = nn.Parameter(torch.empty(0), requires_grad=False)
        self.eval()

    def extra_repr(self) -> str:
        policy = "dynamic N, H, W" if self.input_size is None else f"H x W fixed at {self.input_size}"
        return f"{self.runtime} {self.precision}, {self.path.name}, {policy}, threads={self.threads}"

    def _apply(self, fn, recurse: bool = True):
        moved = fn(torch.empty(0))
        if moved.device.type != "cpu":
            raise RuntimeFailure(f"{self.runtime} runs on the CPU: this module cannot move to {moved.device}; use "
                                 "runtime='torch' for a GPU (hrnet.optimize(model) for its fast path)")
        return self

    def train(self, mode: bool = True) -> "RuntimeModule":
        if mode:
            raise RuntimeFailure(f"an exported {self.runtime} model is for inference only; train the torch model")
        return super().train(False)

    def check_input(self, x: torch.Tensor) -> np.ndarray:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise RuntimeFailure(f"{self.runtime} model input must be an (N, 3, H, W) float tensor, got {shape}")
        if not x.is_floating_point():
            raise RuntimeFailure(f"{self.runtime} model input must be float (normalised images), got {x.dtype}")
        height, width = x.shape[-2:]
        if self.input_size is not None and (height, width) != self.input_size:
            h, w = self.input_size
            raise RuntimeFailure(
                f"input size {height}x{width} does not fit {self.path.name}, exported for {h}x{w} only: resize the "
                f"input to {h}x{w}, or export with dynamic sizes (input_size=None; `hrnet export` without --static)")
        if min(height, width) < MIN_SIZE:
            raise RuntimeFailure(f"input size {height}x{width}: {self.path.name} takes H and W of at least "
                                 f"{MIN_SIZE} pixels; resize or pad the input")
        return np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())

    def forward(self, x: torch.Tensor) -> torch.Tensor | "OrderedDict[str, torch.Tensor]":
        outputs = [torch.from_numpy(np.asarray(a)) for a in self._run(self.check_input(x))]
        if self.dict_output:
            return OrderedDict(zip(self.output_names, outputs))
        return outputs[0]

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError


class OnnxRuntimeModule(RuntimeModule):
    runtime = "onnxruntime"

    def __init__(self, path: Path, **options: Any):
        super().__init__(path, **options)
        onnxruntime = require("onnxruntime", extra="onnx", purpose="runtime='onnxruntime'")
        settings = onnxruntime.SessionOptions()
        # ENABLE_ALL includes the NCHWc convolution layout, the largest CPU speed-up.
        settings.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        settings.intra_op_num_threads = self.threads
        settings.inter_op_num_threads = 1
        settings.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        try:
            self.session = onnxruntime.InferenceSession(str(path), settings, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types
            raise RuntimeFailure(f"onnxruntime cannot load {path}: {error}; delete the file to export again") from None
        self.input_name = self.session.get_inputs()[0].name

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        try:
            return self.session.run(None, {self.input_name: x})
        except Exception as error:
            raise RuntimeFailure(f"onnxruntime failed on input {list(x.shape)} with {self.path.name}: {error}") from None


class OpenVINOModule(RuntimeModule):
    """OpenVINO on the CPU, latency hint, one stream. A dynamic export is compiled once with
    dynamic shapes (measured within a few percent of a per-shape static compile on HRNet, and no
    recompilation when sizes change); a fixed-size export is reshaped to its size."""

    runtime = "openvino"

    def __init__(self, path: Path, **options: Any):
        super().__init__(path, **options)
        openvino = require("openvino", extra="openvino", purpose="runtime='openvino'")
        core = openvino.Core()
        try:
            model = core.read_model(str(path))
            if self.input_size is not None:
                model.reshape({0: openvino.PartialShape([-1, 3, *self.input_size])})
            self.compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                                                              "INFERENCE_NUM_THREADS": self.threads,
                                                              "INFERENCE_PRECISION_HINT": "f32"})
        except Exception as error:
            raise RuntimeFailure(f"OpenVINO cannot compile {path}: {error}; delete the file to export again") from None
        self.request = self.compiled.create_infer_request()

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        try:
            results = self.request.infer({0: x})
        except Exception as error:
            raise RuntimeFailure(f"OpenVINO failed on input {list(x.shape)} with {self.path.name}: {error}") from None
        # Copies: the request's output buffers are reused by the next call.
        return [np.array(results[output]) for output in self.compiled.outputs]


MODULES: dict[str, type[RuntimeModule]] = {"onnxruntime": OnnxRuntimeModule, "openvino": OpenVINOModule}
