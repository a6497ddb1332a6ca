"""Reading, recognising and loading checkpoints; atomic saving.

Key remapping lives in `hrnet.layouts` (one module per publisher). Reading a file unwraps its
container (a training checkpoint, mmcv's {"meta", "state_dict"}, ...), strips wrapper prefixes
(DDP's `module.`, the segmentation repo's `model.`), recognises the layout and converts it to this
library's keys: `backbone.<official name>` / `head.<official name>`.
"""

from __future__ import annotations

import io
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .errors import CheckpointError
from .layouts import Layout, recognise
from .layouts.official import BACKBONE_ROOTS, WRAPPER_PREFIXES, canonical_key, official_key, strip_wrappers

log = logging.getLogger("hrnet")

CONTAINER_KEYS = ("state_dict", "model", "model_state", "model_state_dict", "net", "ema")
# Head keys that mark an ImageNet classifier: only such a head (or none) may be dropped when the
# backbone of a checkpoint initialises a model of another task.
CLASSIFIER_HEAD = ("head.incre_modules.", "head.downsamp_modules.", "head.classifier.")
# Head keys that tell the two pose tasks apart: (prefix, what the model is, the task that builds it).
POSE_HEADS = (("head.final_layers.", "a HigherHRNet (bottom-up pose) model", "bottom_up_pose"),
              ("head.final_layer.", "a top-down pose model", "pose"))

__all__ = ["BACKBONE_ROOTS", "WRAPPER_PREFIXES", "Checkpoint", "CheckpointError", "LoadReport", "canonical_key",
           "load_checkpoint", "load_state_dict", "official_key", "read_checkpoint", "read_state_dict", "save_atomic",
           "to_official_state_dict"]


def to_official_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights under the official key names, in the official order."""
    return {official_key(k): v for k, v in model.state_dict().items()}


# ----------------------------------------------------------------------------- reading


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load fails in many ways on a damaged file; all mean "unreadable"
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        if "weights_only" in text or "Unsupported global" in text:
            raise CheckpointError(f"{path}: the file holds Python objects besides tensors, which are not loaded "
                                  "(they could run code). Save the weights with torch.save(model.state_dict()).") from None
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
    """Where downloaded checkpoints are kept ($HRNET_CACHE, else ~/.cache/hrnet); see `hrnet.hub`."""
    from .hub import cache_dir as hub_cache

    return hub_cache()


def resolve_checkpoint(source: str | os.PathLike) -> Path:
    """A local path as is; an http(s) URL is downloaded once into the cache and its cached path returned."""
    text = str(source)
    if not text.startswith(("http://", "https://")):
        return Path(source)
    from .hub import download, url_cache_path

    return download(text, url_cache_path(text))


def _read_raw(path: Path) -> Mapping[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"{path}: not a readable safetensors file ({error}); download it again") from None
    return _unwrap(_torch_load(path), path)


@dataclass
class Checkpoint:
    """A checkpoint read from a file: the state under this library's keys, and its layout."""

    state: dict[str, torch.Tensor]
    layout: Layout
    source: str


def read_checkpoint(path: str | os.PathLike | Checkpoint) -> Checkpoint:
    """Load a checkpoint (.pth/.pt/.bin or .safetensors; a path or an http(s) URL, cached), recognise
    its layout and convert its keys."""
    if isinstance(path, Checkpoint):
        return path
    source = str(path)
    path = resolve_checkpoint(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    raw = {strip_wrappers(k): v for k, v in _read_raw(path).items()}
    layout = recognise(list(raw))
    # Layouts speak in model keys; the model side is compared in the same canonical form.
    state = {canonical_key(k): v for k, v in layout.convert(raw).items()}
    return Checkpoint(state=state, layout=layout, source=source)


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict of a checkpoint file under this library's keys (see `read_checkpoint`)."""
    return read_checkpoint(path).state


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


def _family(state: Mapping[str, torch.Tensor]) -> str | None:
    if "backbone.stem.conv1.conv.weight" in state:
        return "Lite-HRNet"
    return "HRNet" if "backbone.conv1.weight" in state else None


def _family_hint(model_state: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> str | None:
    """HRNet versus Lite-HRNet, and between Lite-HRNets their block kind and width."""
    from .spec import VARIANTS

    ours, theirs = _family(model_state), _family(state)
    if ours and theirs and ours != theirs:
        names = [n for n, s in VARIANTS.items() if (s.stem == "shuffle") == (theirs == "Lite-HRNet")]
        article = lambda name: "an" if name == "HRNet" else "a"  # noqa: E731
        return (f"the checkpoint is {article(theirs)} {theirs} and the model {article(ours)} {ours}: build the "
                f"model with a {theirs} architecture ({', '.join(names)})")
    if ours != "Lite-HRNet" or theirs != ours:
        return None
    kind = lambda sd: "ccw" if any(".cross_resolution_weighting." in k for k in sd) else "shuffle"  # noqa: E731
    if kind(state) != kind(model_state):
        return (f"the checkpoint has {kind(state)!r} blocks and the model {kind(model_state)!r} blocks ('ccw': "
                "Lite-HRNet, 'shuffle': naive Lite-HRNet): build the model with the checkpoint's variant")
    key = "backbone.stage2.0.fuse_layers.0.1.0.weight"
    if key in model_state and key in state and model_state[key].shape[0] != state[key].shape[0]:
        return (f"the checkpoint is a Lite-HRNet of width {state[key].shape[0]} and the model of width "
                f"{model_state[key].shape[0]}: build the model with the checkpoint's variant")
    return None


def _mismatch_hint(model: nn.Module, model_state: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor],
                   layout: Layout | None) -> str:
    """Guess why a checkpoint does not fit, from the tensors that tell architectures apart."""
    implied_head = (layout.implies.get("head", "?") if layout else "?")
    model_head = getattr(getattr(model, "head", None), "__class__", type(None)).__name__
    if implied_head != "?" and (implied_head == "ocr") != (model_head == "OCRHead"):
        wanted = "head='ocr'" if implied_head == "ocr" else "the default head (head=None)"
        return f"the checkpoint is {layout.description.split(' (')[0]}: build the model with {wanted}"
    theirs, ours = (next((p for p in POSE_HEADS if any(k.startswith(p[0]) for k in sd)), None)
                    for sd in (state, model_state))
    if theirs is not None and theirs != ours:
        kind = ours[1] if ours else f"a {getattr(model, 'task', type(model).__name__)} model"
        return f"the checkpoint is {theirs[1]} and the model {kind}: build the model with task='{theirs[2]}'"
    family = _family_hint(model_state, state)
    if family:
        return family
    key = "backbone.transition1.0.0.weight"
    if key in model_state and key in state and model_state[key].shape[0] != state[key].shape[0]:
        return (f"the checkpoint is an HRNet-W{state[key].shape[0]} and the model an HRNet-W"
                f"{model_state[key].shape[0]}: build the model with the checkpoint's width")
    for stage in ("stage2", "stage3", "stage4"):
        count = lambda sd: len({k.split(".")[2] for k in sd if k.startswith(f"backbone.{stage}.")})  # noqa: E731
        if count(state) != count(model_state):
            return (f"the checkpoint has {count(state)} {stage} modules and the model {count(model_state)}: "
                    "it is another variant (e.g. small-v1/v2 versus the standard widths, lite_hrnet_18 versus 30)")
    missing_backbone = [k for k in model_state if k.startswith("backbone.") and k not in state]
    if missing_backbone and all(re.match(r"backbone\.stage4\.\d+\.fuse_layers\.[1-9]", k) for k in missing_backbone):
        return "the checkpoint's last module outputs one branch (a pose model); load it with task='pose'"
    if any(k.startswith("head.") for k in state) and not any(k.startswith(CLASSIFIER_HEAD) for k in state):
        return "the checkpoint's head is another task's or another head's (not an ImageNet classifier)"
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


@dataclass
class _Diff:
    """How a checkpoint's keys and shapes differ from a model's."""

    missing: list[str]
    unexpected: list[str]
    resized: list[str]


def _diff(model_state: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> _Diff:
    return _Diff(missing=[k for k in model_state if k not in state],
                 unexpected=[k for k in state if k not in model_state],
                 resized=[k for k in model_state if k in state and state[k].shape != model_state[k].shape])


def _tolerate_other_head(diff: _Diff, model_state: Mapping[str, torch.Tensor], report: LoadReport) -> None:
    """An ImageNet classifier (or a bare backbone) initialising another task's model: only the
    backbone loads. A head of any other kind must fit: dropping it would leave a random head."""
    head_keys = [k for k in model_state if k.startswith("head.")]
    dropped = _dropped_fusion_outputs(diff.unexpected, model_state)
    theirs = [k for k in diff.unexpected if k.startswith("head.")]
    only_heads = set(diff.missing) == set(head_keys) and all(k.startswith("head.") or k in dropped
                                                             for k in diff.unexpected)
    replaceable = not theirs or any(k.startswith(CLASSIFIER_HEAD) for k in theirs) or not head_keys
    if not (diff.missing or diff.unexpected) or not only_heads or diff.resized or not replaceable:
        return
    if dropped:
        report.notes.append(f"ignored {len(dropped)} fusion tensors of branches the model's last module "
                            "does not output (a pose model keeps only the highest resolution)")
    if head_keys:
        report.notes.append(f"loaded the backbone only: the checkpoint's head differs, so the model's head "
                            f"({len(head_keys)} tensors) is freshly initialised")
    else:
        report.notes.append(f"ignored the checkpoint's head ({len(theirs)} tensors): the model is a backbone")
    report.reinitialized, report.ignored = diff.missing, diff.unexpected
    diff.missing, diff.unexpected = [], []


def _tolerate_class_count(diff: _Diff, model: nn.Module, model_state: Mapping[str, torch.Tensor],
                          state: Mapping[str, torch.Tensor], report: LoadReport) -> None:
    class_keys = _class_keys(model)
    if diff.resized and all(k.startswith(class_keys) for k in diff.resized) and not diff.missing \
            and not diff.unexpected:
        first = diff.resized[0]
        report.notes.append(f"re-initialised the class layer(s) {_describe(diff.resized)}: the checkpoint's has "
                            f"{state[first].shape[0]} outputs (classes or keypoints), the model's "
                            f"{model_state[first].shape[0]}")
        report.reinitialized, diff.resized = diff.resized, []


def _note_interpolation(model: nn.Module, layout: Layout | None, report: LoadReport) -> None:
    implied = layout.implies.get("align_corners") if layout is not None else None
    spec = getattr(model, "spec", None)
    if implied is not None and spec is not None and spec.fuse_mode == "bilinear" and spec.align_corners != implied:
        report.notes.append(f"the layout fuses with align_corners={implied} but this model uses "
                            f"{spec.align_corners}: outputs differ from the publisher's; build the model with "
                            "create_model(..., checkpoint=...) to take the file's settings")


def _fill_absent_biases(model_state: Mapping[str, torch.Tensor], state: dict[str, torch.Tensor],
                        layout: Layout | None, report: LoadReport) -> None:
    """A layout without conv biases (mmsegmentation's ConvModules) loads exactly into a model whose convs
    have them: a zero bias is no bias."""
    if layout is None or layout.implies.get("conv_bias", True):
        return
    absent = [k for k in model_state if k.endswith(".bias") and k not in state
              and k[: -len("bias")] + "weight" in state and state[k[: -len("bias")] + "weight"].dim() == 4]
    for key in absent:
        state[key] = torch.zeros_like(model_state[key])
    if absent:
        report.notes.append(f"set {len(absent)} conv bias(es) the layout does not have to zero "
                            f"({_describe(absent, 2)}): the same function")


def _check_dtypes(model_state: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], source: str) -> None:
    """Integer tensors copied into float parameters give garbage silently: refuse them."""
    for key, value in model_state.items():
        theirs = state.get(key)
        if theirs is not None and value.is_floating_point() and not theirs.is_floating_point():
            raise CheckpointError(f"{source}: tensor {key} is {str(theirs.dtype).removeprefix('torch.')}, but the "
                                  f"model's is {str(value.dtype).removeprefix('torch.')}: the file does not hold "
                                  "float weights (a converted or quantised export?); use the original checkpoint")


def load_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], *, source: str = "state dict",
                    strict: bool = True, layout: Layout | None = None) -> LoadReport:
    """Load canonical-key `state` into `model`, tolerating only the documented differences.

    Tolerated (each reported in one line): old checkpoints without BatchNorm `num_batches_tracked`;
    an ImageNet classifier loaded into a pose, segmentation or detection model (only the backbone
    loads); a head whose class count differs (re-initialised). What a recognised `layout` implies is
    reported too. Anything else raises CheckpointError naming the keys, unless `strict=False`.
    """
    report = LoadReport(source=source)
    if layout is not None and layout.description:
        report.notes.append(f"layout: {layout.description}")
    _note_interpolation(model, layout, report)
    own = model.state_dict()
    to_model = {canonical_key(k): k for k in own}
    model_state = {c: own[k] for c, k in to_model.items()}
    state = dict(state)
    old = [k for k in model_state if k.endswith("num_batches_tracked") and k not in state
           and k.replace("num_batches_tracked", "running_mean") in state]
    for k in old:
        state[k] = model_state[k]
    if old:
        report.notes.append(f"checkpoint predates BatchNorm num_batches_tracked ({len(old)} counters set to 0)")
    _check_dtypes(model_state, state, source)
    _fill_absent_biases(model_state, state, layout, report)
    diff = _diff(model_state, state)
    _tolerate_other_head(diff, model_state, report)
    _tolerate_class_count(diff, model, model_state, state, report)
    _raise_or_note(diff, model, model_state, state, report, strict=strict, layout=layout)
    skip = set(diff.missing) | set(diff.resized) | set(report.reinitialized)
    usable = {to_model[k]: state[k] for k in model_state if k not in skip}
    model.load_state_dict(usable, strict=False)
    report.loaded = len(usable)
    for note in report.notes:
        log.warning("%s: %s", source, note)
    return report


def _raise_or_note(diff: _Diff, model: nn.Module, model_state: Mapping[str, torch.Tensor],
                   state: Mapping[str, torch.Tensor], report: LoadReport, *, strict: bool, layout: Layout | None) -> None:
    problems = []
    if diff.missing:
        problems.append(f"missing from the checkpoint: {_describe(diff.missing)}")
    if diff.unexpected:
        problems.append(f"not in the model: {_describe(diff.unexpected)}")
    if diff.resized:
        problems.append("different shapes: " + _describe(
            [f"{k} {tuple(state[k].shape)} vs {tuple(model_state[k].shape)}" for k in diff.resized], 3))
    if problems and strict:
        raise CheckpointError(f"{report.source} does not fit the model: "
                              f"{_mismatch_hint(model, model_state, state, layout)}. " + "; ".join(problems)
                              + ". Pass strict=False to load the matching tensors only.")
    if problems:
        report.notes.append("strict=False, skipped: " + "; ".join(problems))


def load_checkpoint(model: nn.Module, path: str | os.PathLike, *, strict: bool = True) -> LoadReport:
    """Load a checkpoint file of any known layout into `model`; see `load_state_dict`."""
    loaded = read_checkpoint(path)
    return load_state_dict(model, loaded.state, source=loaded.source, strict=strict, layout=loaded.layout)


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
