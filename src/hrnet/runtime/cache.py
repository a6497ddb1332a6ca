"""Exported models on disk: one ONNX file per (weights, input-size policy, precision), with a JSON sidecar.

    <cache>/<name>-<policy>-<precision>.onnx     policy: "dynamic" (N, H, W free) or "HxW" (N free)
    <cache>/<name>-<policy>-<precision>.json     the sidecar

The sidecar records the hash of the weights the file was made from (`source_hash`), the versions
of torch / onnx / onnxruntime / openvino and hrnet, the policy, and what the export measured
(parity per runtime, the int8 ops kept in float32). A file whose sidecar names another hash (the
checkpoint changed) or another export format is stale: it is exported again, and a message says so.
Files are written under a temporary name and renamed, so a cache never holds half an export.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger("hrnet")
# Bump when what an export contains changes (exporter, graph, quantization recipe): old files go stale.
EXPORT_FORMAT = 1


def default_cache() -> Path:
    """hrnet.hub.cache_dir()/exports ($HRNET_CACHE/exports, else ~/.cache/hrnet/exports)."""
    from ..hub import cache_dir

    return cache_dir() / "exports"


def weights_hash(model: nn.Module) -> str:
    """sha256 of the model's state dict (names, shapes, dtypes and values): the export's source
    hash when the caller gives none."""
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def structure_name(model: nn.Module) -> str:
    """A file name for `model` when the caller gives none: its kind and a digest of its architecture
    (state-dict names and shapes), so two architectures never share a cache file."""
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        digest.update(f"{key}:{tuple(value.shape)};".encode())
    kind = getattr(model, "task", None) or type(model).__name__.lower()
    return f"{kind}-{digest.hexdigest()[:12]}"


def versions() -> dict[str, str]:
    """Versions of the packages that made (and will run) an export; absent ones are left out."""
    import importlib.metadata

    found = {}
    for package in ("hrnet", "torch", "onnx", "onnxruntime", "openvino"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def policy_name(input_size: tuple[int, int] | None) -> str:
    return "dynamic" if input_size is None else f"{input_size[0]}x{input_size[1]}"


@dataclass
class Entry:
    """One cached export: the ONNX file and its sidecar."""

    onnx: Path
    sidecar: Path

    @classmethod
    def at(cls, folder: Path, name: str, policy: str, precision: str) -> "Entry":
        stem = f"{name}-{policy}-{precision}"
        return cls(folder / f"{stem}.onnx", folder / f"{stem}.json")

    def read(self) -> dict[str, Any] | None:
        """The sidecar, or None when either file is missing or the sidecar is unreadable."""
        if not (self.onnx.is_file() and self.sidecar.is_file()):
            return None
        try:
            return json.loads(self.sidecar.read_text())
        except (OSError, json.JSONDecodeError):
            log.warning("%s is unreadable: exporting again", self.sidecar)
            return None

    def stale_reason(self, meta: dict[str, Any], source_hash: str) -> str | None:
        """Why the cached file cannot be used for weights `source_hash` (None: it can)."""
        if meta.get("source_hash") != source_hash:
            return (f"it was made from weights {str(meta.get('source_hash'))[:12]}..., these are "
                    f"{source_hash[:12]}...")
        if meta.get("format") != EXPORT_FORMAT:
            return f"it has export format {meta.get('format')}, this hrnet writes {EXPORT_FORMAT}"
        return None

    def write(self, meta: dict[str, Any]) -> None:
        write_atomic(self.sidecar, json.dumps(meta, indent=1, sort_keys=True).encode())


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def temporary_path(path: Path) -> Path:
    """A fresh name beside `path` for a file to be renamed onto it once complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)
