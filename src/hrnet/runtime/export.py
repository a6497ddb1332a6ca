"""Making the cached files: the float32 ONNX export and its int8 QDQ version, each with its sidecar."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from typing import Any

import torch
from torch import nn

from ..errors import RuntimeFailure
from . import cache as cache_module

log = logging.getLogger("hrnet")


def _is_fresh(entry: cache_module.Entry, source_hash: str, report: Any) -> dict[str, Any] | None:
    """The sidecar of a usable cached file, else None (after saying why an existing one is stale)."""
    meta = entry.read()
    if meta is None:
        return None
    reason = entry.stale_reason(meta, source_hash)
    if reason is None:
        return meta
    message = f"stale export {entry.onnx.name}: {reason}; exporting again"
    log.warning("%s", message)
    report.exported.append(message)
    return None


def _outputs(model: nn.Module) -> tuple[list[str], bool]:
    """The output names of the export ("output", or the dict's keys) and whether it is a dict."""
    with torch.no_grad():
        sample = model(torch.zeros(1, 3, 64, 64))
    if isinstance(sample, dict):
        return [str(k) for k in sample], True
    if not isinstance(sample, torch.Tensor):
        raise RuntimeFailure(f"{type(model).__name__} returns {type(sample).__name__} in eval mode; an exported "
                             "model returns one tensor or a dict of tensors")
    return ["output"], False


def ensure_fp32(model: nn.Module, entry: cache_module.Entry, *, source_hash: str,
                input_size: tuple[int, int] | None, exporter: str, report: Any) -> dict[str, Any]:
    """The sidecar of the float32 export of `model` at `entry`, exporting it when absent or stale."""
    from ..export import export_onnx
    from .load import EXAMPLE_SIZE, task_of

    meta = _is_fresh(entry, source_hash, report)
    if meta is not None:
        return meta
    names, dict_output = _outputs(model)
    start = time.perf_counter()
    tmp = cache_module.temporary_path(entry.onnx)
    try:
        try:
            export_onnx(model, tmp, input_size=input_size or EXAMPLE_SIZE, check=False, dynamic=input_size is None,
                        exporter=exporter)
        except Exception as error:
            if exporter == "dynamo":
                raise RuntimeFailure(f"ONNX export of {type(model).__name__} failed: {error}") from error
            log.warning("the torchscript exporter failed (%s); trying torch.export (slower)", error)
            exporter = "dynamo"
            export_onnx(model, tmp, input_size=input_size or EXAMPLE_SIZE, check=False, dynamic=input_size is None,
                        exporter=exporter)
        os.replace(tmp, entry.onnx)
    finally:
        tmp.unlink(missing_ok=True)
    meta = {"format": cache_module.EXPORT_FORMAT, "source_hash": source_hash, "precision": "fp32",
            "policy": cache_module.policy_name(input_size), "versions": cache_module.versions(),
            "task": task_of(model), "outputs": names, "dict_output": dict_output, "exporter": exporter,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    entry.write(meta)
    report.exported.append(f"exported {entry.onnx} ({meta['policy']}, {exporter} exporter, "
                           f"{time.perf_counter() - start:.1f} s)")
    return meta


def calibration_digest(batches: list[Any]) -> str:
    """sha256 of the calibration inputs' shapes and values (a detector's lists of images too)."""
    digest = hashlib.sha256()
    for batch in batches:
        for tensor in (batch if isinstance(batch, (list, tuple)) else [batch]):
            tensor = tensor.detach().cpu().float().contiguous()
            digest.update(str(list(tensor.shape)).encode())
            digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def ensure_int8(fp32: cache_module.Entry, entry: cache_module.Entry, *, source_hash: str,
                calibration: list[torch.Tensor] | None, report: Any) -> dict[str, Any]:
    """The sidecar of the int8 QDQ file at `entry`, quantizing the float32 file when absent or stale."""
    from .load import require_calibration
    from .quantize import quantize_qdq

    meta = _is_fresh(entry, source_hash, report)
    digest = calibration_digest(calibration) if calibration else None
    if meta is not None and (digest is None or meta.get("calibration_digest") == digest):
        return meta
    if meta is not None:  # a cached int8 file calibrated on other inputs: the new ones decide
        message = f"stale export {entry.onnx.name}: other calibration inputs than it was quantized on; quantizing again"
        log.warning("%s", message)
        report.exported.append(message)
    batches = require_calibration(calibration)
    start = time.perf_counter()
    tmp = cache_module.temporary_path(entry.onnx)
    try:
        count = quantize_qdq(fp32.onnx, tmp, batches)
        os.replace(tmp, entry.onnx)
    finally:
        tmp.unlink(missing_ok=True)
    base = fp32.read() or {}
    meta = {**{k: v for k, v in base.items() if k not in ("checks", "fp32_ops", "created")},
            "precision": "int8", "quantization": "QDQ static, uint8 activations (min-max), int8 weights per channel",
            "calibration_batches": count, "calibration_shapes": sorted({str(list(b.shape)) for b in batches}),
            "calibration_digest": digest,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    entry.write(meta)
    report.exported.append(f"quantized {entry.onnx} (int8 QDQ, {count} calibration batch(es), "
                           f"{time.perf_counter() - start:.1f} s)")
    return meta
