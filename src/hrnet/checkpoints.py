"""Reading, recognising and loading checkpoints; atomic saving.

All key remapping lives here. Inside this library a model's keys are `backbone.<official name>`
and `head.<official name>`; the official repositories (and timm) use the bare official names at
the root, the segmentation repo adds a `model.` prefix (its FullModel wrapper, which also saves
`loss.*` buffers), DDP adds `module.`, and training checkpoints wrap the weights in a dict.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import sys
import tempfile
import urllib.error
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

log = logging.getLogger("hrnet")

# First components of the official backbone keys; everything else at the root belongs to a head.
BACKBONE_ROOTS = ("conv1", "bn1", "conv2", "bn2", "layer1", "transition1", "transition2", "transition3",
                  "stage2", "stage3", "stage4")
WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.")
CONTAINER_KEYS = ("state_dict", "model", "model_state", "model_state_dict", "net", "ema")


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint for the model at hand."""


# ----------------------------------------------------------------------------- key names


def _strip_wrappers(key: str) -> str:
    while key.startswith(WRAPPER_PREFIXES):
        key = key.split(".", 1)[1]
    return key


def canonical_key(key: str) -> str:
    """Any known layout -> `backbone.<official>` / `head.<official>`."""
    key = _strip_wrappers(key)
    if key.startswith(("backbone.", "head.")):
        return key
    root = key.split(".", 1)[0]
    return ("backbone." if root in BACKBONE_ROOTS else "head.") + key


def official_key(key: str) -> str:
    """Library key -> the official repositories' key (no `model.` prefix)."""
    return canonical_key(key).split(".", 1)[1]


def to_official_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights under the official key names, in the official order."""
    return {official_key(k): v for k, v in model.state_dict().items()}


# ----------------------------------------------------------------------------- reading


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load fails in many ways on a damaged file; all mean "unreadable"
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({text}). The file may be truncated by an "
            "interrupted download or copy, or be another kind of file; download it again."
        ) from None


def _unwrap(obj: Any, path: Path) -> Mapping[str, torch.Tensor]:
    """Find the tensor dict inside what torch.load returned."""
    for _ in range(3):
        if not isinstance(obj, Mapping):
            break
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
        inner = next((obj[k] for k in CONTAINER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    what = f"a dict with keys {sorted(obj)[:8]}" if isinstance(obj, Mapping) else type(obj).__name__
    raise CheckpointError(
        f"{path}: holds {what}, not a state dict of tensors (looked inside {', '.join(CONTAINER_KEYS)}). "
        "Pass a file saved with torch.save(model.state_dict()) or a training checkpoint of this library."
    )


def cache_dir() -> Path:
    """Where downloaded checkpoints are kept: $HRNET_CACHE, else ~/.cache/hrnet."""
    return Path(os.environ.get("HRNET_CACHE") or Path.home() / ".cache" / "hrnet")


def resolve_checkpoint(source: str | os.PathLike) -> Path:
    """A local path as is; an http(s) URL is downloaded once into `cache_dir()` (a folder per URL,
    so equal file names from different places never collide) and its cached path returned."""
    text = str(source)
    if not text.startswith(("http://", "https://")):
        return Path(source)
    name = Path(urllib.parse.urlparse(text).path).name or "checkpoint.pth"
    target = cache_dir() / hashlib.sha256(text.encode()).hexdigest()[:16] / name
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        log.warning("downloading %s to %s", text, target)
        try:  # torch.hub writes to a temporary file and renames it: no partial file is ever cached
            torch.hub.download_url_to_file(text, str(target), progress=sys.stderr.isatty())
        except (urllib.error.URLError, OSError) as error:
            raise CheckpointError(f"could not download {text} ({error}); check the address and the network, "
                                  "or download the file yourself and pass its path") from None
    return target


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a checkpoint (.pth/.pt/.bin or .safetensors; a path or an http(s) URL, cached) and
    return it with canonical keys."""
    path = resolve_checkpoint(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            raw: Mapping[str, torch.Tensor] = load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"{path}: not a readable safetensors file ({error}); download it again") from None
    else:
        raw = _unwrap(_torch_load(path), path)
    # The segmentation repo's FullModel saves its loss (class weights) beside the model.
    return {canonical_key(k): v for k, v in raw.items() if not _strip_wrappers(k).startswith("loss.")}


# ----------------------------------------------------------------------------- loading


@dataclass
class LoadReport:
    """What `load_checkpoint` did. `notes` holds one line per event worth telling the user."""

    source: str
    loaded: int = 0
    reinitialized: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join([f"loaded {self.loaded} tensors from {self.source}", *self.notes])


def _class_keys(model: nn.Module) -> tuple[str, ...]:
    head = getattr(model, "head", None)
    return tuple("head." + k for k in getattr(head, "class_keys", ()))


def _mismatch_hint(model_state: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> str:
    """Guess why a checkpoint does not fit, from the tensors that tell architectures apart."""
    key = "backbone.transition1.0.0.weight"
    if key in model_state and key in state and model_state[key].shape[0] != state[key].shape[0]:
        return (f"the checkpoint is an HRNet-W{state[key].shape[0]} and the model an HRNet-W"
                f"{model_state[key].shape[0]}: build the model with the checkpoint's width")
    for stage in ("stage2", "stage3", "stage4"):
        count = lambda sd: len({k.split(".")[2] for k in sd if k.startswith(f"backbone.{stage}.")})  # noqa: E731
        if count(state) != count(model_state):
            return (f"the checkpoint has {count(state)} {stage} modules and the model {count(model_state)}: "
                    "it is another variant (e.g. small-v1/v2 versus the standard widths)")
    missing_backbone = [k for k in model_state if k.startswith("backbone.") and k not in state]
    if missing_backbone and all(re.match(r"backbone\.stage4\.\d+\.fuse_layers\.[1-9]", k) for k in missing_backbone):
        return "the checkpoint's last module outputs one branch (a pose model); load it with task='pose'"
    return "the checkpoint was saved from a different architecture or task"


def _dropped_fusion_outputs(unexpected: list[str], model_state: Mapping[str, torch.Tensor]) -> set[str]:
    """Checkpoint keys of fusion outputs that the model's modules do not compute at all."""
    dropped = set()
    for key in unexpected:
        match = re.match(r"backbone\.stage\d+\.\d+\.fuse_layers\.\d+\.", key)
        if match and not any(k.startswith(match.group(0)) for k in model_state):
            dropped.add(key)
    return dropped


def _describe(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def load_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], *, source: str = "state dict",
                    strict: bool = True) -> LoadReport:
    """Load canonical-key `state` into `model`, tolerating only the documented differences.

    Tolerated (each reported in one line): old checkpoints without BatchNorm `num_batches_tracked`;
    a checkpoint whose head differs entirely (an ImageNet classifier loaded into a pose or
    segmentation model: only the backbone loads); a head whose class count differs (re-initialised).
    Anything else raises CheckpointError naming the keys, unless `strict=False`.
    """
    report = LoadReport(source=source)
    own = model.state_dict()
    to_model = {canonical_key(k): k for k in own}
    model_state = {c: own[k] for c, k in to_model.items()}
    state = dict(state)
    old = [k for k in model_state if k.endswith("num_batches_tracked") and k not in state
           and k.replace("num_batches_tracked", "running_mean") in state]
    for k in old:
        state[k] = model_state[k]
    missing = [k for k in model_state if k not in state]
    unexpected = [k for k in state if k not in model_state]
    resized = [k for k in model_state if k in state and state[k].shape != model_state[k].shape]
    head_keys = [k for k in model_state if k.startswith("head.")]
    class_keys = _class_keys(model)

    if old:
        report.notes.append(f"checkpoint predates BatchNorm num_batches_tracked ({len(old)} counters set to 0)")
    dropped = _dropped_fusion_outputs(unexpected, model_state)
    other_head = set(missing) == set(head_keys) and all(k.startswith("head.") or k in dropped for k in unexpected)
    if (missing or unexpected) and other_head and not resized:
        if dropped:
            report.notes.append(f"ignored {len(dropped)} fusion tensors of branches the model's last module "
                                "does not output (a pose model keeps only the highest resolution)")
            unexpected = [k for k in unexpected if k not in dropped]
        if head_keys:
            report.notes.append(f"loaded the backbone only: the checkpoint's head differs, so the model's head "
                                f"({len(head_keys)} tensors) is freshly initialised")
        else:
            report.notes.append(f"ignored the checkpoint's head ({len(unexpected)} tensors): the model is a backbone")
        report.reinitialized, report.ignored, missing, unexpected = missing, unexpected, [], []
    if resized and all(k.startswith(class_keys) for k in resized) and not missing and not unexpected:
        first = resized[0]
        report.notes.append(f"re-initialised the class layer(s) {_describe(resized)}: checkpoint has "
                            f"{state[first].shape[0]} classes, the model {model_state[first].shape[0]}")
        report.reinitialized, resized = resized, []

    problems = []
    if missing:
        problems.append(f"missing from the checkpoint: {_describe(missing)}")
    if unexpected:
        problems.append(f"not in the model: {_describe(unexpected)}")
    if resized:
        problems.append("different shapes: " + _describe(
            [f"{k} {tuple(state[k].shape)} vs {tuple(model_state[k].shape)}" for k in resized], 3))
    if problems and strict:
        raise CheckpointError(f"{source} does not fit the model: {_mismatch_hint(model_state, state)}. "
                              + "; ".join(problems) + ". Pass strict=False to load the matching tensors only.")
    if problems:
        report.notes.append("strict=False, skipped: " + "; ".join(problems))
    skip = set(missing) | set(resized) | set(report.reinitialized)
    usable = {to_model[k]: state[k] for k in model_state if k not in skip}
    model.load_state_dict(usable, strict=False)
    report.loaded = len(usable)
    for note in report.notes:
        log.warning("%s: %s", source, note)
    return report


def load_checkpoint(model: nn.Module, path: str | os.PathLike, *, strict: bool = True) -> LoadReport:
    """Load an official, timm or hrnet checkpoint file into `model`; see `load_state_dict`."""
    return load_state_dict(model, read_state_dict(path), source=str(path), strict=strict)


# ----------------------------------------------------------------------------- saving


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename over `path`.

    A crash at any moment leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getbuffer())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
