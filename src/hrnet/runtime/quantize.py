"""int8: static post-training quantization to a QDQ ONNX file, and which operators stay in float32.

The QDQ file (onnxruntime's `quantize_static`: uint8 asymmetric activations calibrated on the
caller's images, int8 symmetric weights per output channel) runs on both runtimes: onnxruntime
fuses each DequantizeLinear -> op -> QuantizeLinear into an integer kernel (QLinearConv,
QLinearAdd, ...), and OpenVINO turns the pairs into FakeQuantize and runs its own int8 kernels.
One file means one set of scales, so the accuracy measured once holds for both.

What stays float32 is read from what the runtime will execute, not guessed from the file:
onnxruntime's optimized graph (an op whose data input is float), OpenVINO's compiled runtime
model (a compute layer whose runtime precision is f32).
"""

from __future__ import annotations

import logging
import tempfile
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from ..errors import DataError, require

log = logging.getLogger("hrnet")
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
# Operators that only move shapes and indices around: never "kept in float32".
_INTEGER_OPS = {"Shape", "Size", "QuantizeLinear", "DynamicQuantizeLinear"}
_OPENVINO_COMPUTE = {"Convolution", "GroupConvolution", "Deconvolution", "FullyConnected", "MatMul", "Eltwise",
                     "Interpolate", "Pooling", "Softmax", "Concatenation", "Reduce", "MVN", "Subgraph", "Gemm"}


def _onnxruntime_quantization():
    return require("onnxruntime.quantization", extra="onnx", purpose="int8 quantization")


def _calibration_reader(batches: Iterable[torch.Tensor], input_name: str):
    quantization = _onnxruntime_quantization()

    class Reader(quantization.CalibrationDataReader):
        def __init__(self) -> None:
            self.batches: Iterator[torch.Tensor] = iter(batches)
            self.count = 0

        def get_next(self):
            batch = next(self.batches, None)
            if batch is None:
                return None
            self.count += 1
            return {input_name: np.ascontiguousarray(batch.detach().cpu().float().numpy())}

    return Reader()


def quantize_qdq(source: Path, target: Path, batches: Iterable[torch.Tensor], *, per_channel: bool = True,
                 method: str = "minmax") -> int:
    """Write the int8 QDQ version of the float32 ONNX file `source` to `target`, calibrated on
    `batches` (N, 3, H, W, the task's own pre-processing). Returns the number of batches used."""
    quantization = _onnxruntime_quantization()
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method {method!r}: choose one of {', '.join(CALIBRATION_METHODS)}")
    reader = _calibration_reader(batches, "images")
    methods = {"minmax": quantization.CalibrationMethod.MinMax,
               "percentile": quantization.CalibrationMethod.Percentile,
               "entropy": quantization.CalibrationMethod.Entropy}
    excluded = _scalings(source)
    root = logging.getLogger()
    level = root.level
    # quantize_static logs advice on the root logger ("consider pre-processing"): the export folds
    # BatchNorm and constants already, which is what that pre-processing would do.
    root.setLevel(max(level, logging.ERROR))
    try:
        quantization.quantize_static(
            str(source), str(target), reader, quant_format=quantization.QuantFormat.QDQ, per_channel=per_channel,
            activation_type=quantization.QuantType.QUInt8, weight_type=quantization.QuantType.QInt8,
            calibrate_method=methods[method], calibration_providers=["CPUExecutionProvider"],
            nodes_to_exclude=excluded)
    finally:
        root.setLevel(level)
    if reader.count == 0:
        raise DataError("int8 calibration got no batches: give calibration inputs (--calibrate DIR, a folder "
                        "of the task's typical images, or --calibrate recipe:val, the run's own val inputs)")
    return reader.count


def _scalings(path: Path) -> list[str]:
    """Names of the Mul nodes that scale by a constant (OCR's attention scale key_channels^-0.5):
    left in float32, since a quantized constant scale there breaks OpenVINO's int8 transformations
    (MultiplyPartialTransformation fails) and costs next to nothing in float32."""
    import onnx

    graph = onnx.load(str(path)).graph
    constants = {t.name for t in graph.initializer} | {o for n in graph.node if n.op_type == "Constant"
                                                       for o in n.output}
    return [n.name for n in graph.node if n.op_type == "Mul" and any(i in constants for i in n.input)]


def _float_values(graph) -> set[str]:
    """Names of the float tensors of an ONNX graph, by propagating types from the inputs and
    initializers in node order (an op's output is float when its data input is)."""
    import onnx

    floats = {v.name for v in graph.input if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    floats |= {t.name for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    for node in graph.node:
        if node.op_type == "DequantizeLinear":
            is_float = True
        elif node.op_type in _INTEGER_OPS or node.op_type.startswith("QLinear"):
            is_float = False
        elif node.op_type == "Cast":
            is_float = any(a.name == "to" and a.i == onnx.TensorProto.FLOAT for a in node.attribute)
        elif node.op_type == "Constant":
            is_float = any(a.name == "value" and a.t.data_type == onnx.TensorProto.FLOAT for a in node.attribute)
        else:
            is_float = bool(node.input) and node.input[0] in floats
        if is_float:
            floats.update(node.output)
    return floats


def onnxruntime_fp32_ops(path: Path) -> dict[str, int]:
    """Operator type -> count of the ops onnxruntime runs in float32 on the QDQ file at `path`
    (after its QDQ fusion: DequantizeLinear feeding a float op shows it stays float)."""
    import onnx
    import onnxruntime

    with tempfile.TemporaryDirectory(prefix="hrnet-ops-") as scratch:
        options = onnxruntime.SessionOptions()
        # EXTENDED: the QDQ fusions, without the hardware-specific NCHWc layout rewrite.
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(Path(scratch) / "optimized.onnx")
        onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        graph = onnx.load(options.optimized_model_filepath).graph
    floats = _float_values(graph)
    kept = Counter(node.op_type for node in graph.node
                   if node.op_type not in ("DequantizeLinear", "QuantizeLinear") and node.input
                   and node.input[0] in floats and node.op_type not in _INTEGER_OPS
                   and not node.op_type.startswith("QLinear"))  # integer kernels (their first input is a scale)
    return dict(sorted(kept.items()))


def openvino_fp32_ops(compiled) -> dict[str, int]:
    """Layer type -> count of the compute layers OpenVINO's compiled model runs in f32."""
    kept: Counter[str] = Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        layer, precision = info["layerType"].astype(str), info["runtimePrecision"].astype(str)
        if layer in _OPENVINO_COMPUTE and precision == "f32":
            kept[layer] += 1
    return dict(sorted(kept.items()))
