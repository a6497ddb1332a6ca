"""The eager PyTorch fast path: BatchNorm folded into convolutions, channels-last, torch.compile, fp16/bf16.

    fast = hrnet.optimize(model, channels_last=True)          # a new module; `model` is untouched
    fast = hrnet.optimize(model.cuda(), dtype=torch.float16)  # GPU: half-precision autocast

Folding finds every convolution whose output is read by one BatchNorm and by nothing else, from the
data flow of one traced forward pass (so it works for any model built of standard modules, not
only for names it knows): y = bn(conv(x)) becomes one convolution with weight w * g / sqrt(v + e)
and bias (b - m) * g / sqrt(v + e) + beta. Eval mode only: a folded model has no BatchNorm
statistics to train.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from ..errors import ConfigError

log = logging.getLogger("hrnet")
NORMS = (nn.BatchNorm2d,)
DTYPES = (None, torch.float16, torch.bfloat16)


def _norm_types() -> tuple[type[nn.Module], ...]:
    from torchvision.ops import FrozenBatchNorm2d

    return (*NORMS, FrozenBatchNorm2d)


# Reading these does not read a tensor's values: they never block a fold.
METADATA = frozenset({"dim", "size", "shape", "dtype", "device", "ndim", "numel", "is_floating_point",
                      "__get__", "requires_grad", "is_cuda", "layout", "stride", "is_contiguous"})


class _UseCounter(TorchFunctionMode):
    """Counts, for every tensor of a forward pass, how many torch functions read its values
    (outside the norm layers themselves, whose own reads are the one use a fold allows)."""

    def __init__(self, watched: dict[int, Any]) -> None:
        super().__init__()
        self.watched = watched  # id -> the tensors to count (kept alive, so their ids stay theirs)
        self.uses: dict[int, int] = {}
        self.depth = 0  # > 0 inside a norm layer's forward

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if self.depth == 0 and getattr(func, "__name__", "") not in METADATA:
            for value in tree_flatten((args, kwargs or {}))[0]:
                if isinstance(value, torch.Tensor) and id(value) in self.watched:
                    self.uses[id(value)] = self.uses.get(id(value), 0) + 1
        return func(*args, **(kwargs or {}))


def _example_input(model: nn.Module) -> torch.Tensor:
    tensor = next(model.parameters(), None)
    device = tensor.device if tensor is not None else torch.device("cpu")
    dtype = tensor.dtype if tensor is not None and tensor.is_floating_point() else torch.float32
    return torch.randn(1, 3, 64, 64, device=device, dtype=dtype)


def foldable_pairs(model: nn.Module, example: torch.Tensor) -> list[tuple[str, str]]:
    """(conv name, norm name) of every Conv2d whose output only one BatchNorm reads, found by running
    `model` (eval mode) once on `example` (N, 3, H, W) and following the tensors."""
    names = {module: name for name, module in model.named_modules()}
    produced: dict[int, nn.Module] = {}
    read_by: dict[nn.Module, list[tuple[int, nn.Module]]] = {}
    keep: list[torch.Tensor] = []  # holds every recorded tensor so that no id is reused mid-pass

    def after_conv(module, _inputs, output):
        keep.append(output)
        produced[id(output)] = module

    def before_norm(module, inputs):
        keep.append(inputs[0])
        read_by.setdefault(module, []).append((id(inputs[0]), module))
        if id(inputs[0]) in produced:
            counter.uses[id(inputs[0])] = counter.uses.get(id(inputs[0]), 0) + 1
        counter.depth += 1

    def after_norm(_module, _inputs, _output):
        counter.depth -= 1

    counter = _UseCounter(produced)
    norms = [m for m in model.modules() if isinstance(m, _norm_types())]
    handles = [m.register_forward_hook(after_conv) for m in model.modules() if type(m) is nn.Conv2d]
    handles += [m.register_forward_pre_hook(before_norm) for m in norms]
    handles += [m.register_forward_hook(after_norm) for m in norms]
    try:
        with torch.no_grad(), counter:
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    calls_of: dict[nn.Module, int] = {}
    for conv in produced.values():
        calls_of[conv] = calls_of.get(conv, 0) + 1
    pairs = []
    for norm, calls in read_by.items():
        convs = {produced.get(tensor_id) for tensor_id, _ in calls}
        conv = convs.pop() if len(convs) == 1 else None
        # One conv, called as often as the norm, each of its outputs read only by this norm.
        if conv is None or calls_of[conv] != len(calls) or conv.out_channels != norm.num_features:
            continue
        if all(counter.uses.get(tensor_id, 0) == 1 for tensor_id, _ in calls):
            pairs.append((names[conv], names[norm]))
    return pairs


def _folded(conv: nn.Conv2d, norm: nn.Module) -> nn.Conv2d:
    eps = norm.eps
    scale = norm.weight.detach() * torch.rsqrt(norm.running_var.detach() + eps)
    fused = copy.deepcopy(conv)
    weight = conv.weight.detach() * scale.view(-1, 1, 1, 1).to(conv.weight.dtype)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(scale)
    bias = (bias - norm.running_mean.detach()) * scale + norm.bias.detach()
    fused.weight = nn.Parameter(weight, requires_grad=False)
    fused.bias = nn.Parameter(bias.to(conv.weight.dtype), requires_grad=False)
    return fused


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def fuse(model: nn.Module, *, example: torch.Tensor | None = None) -> nn.Module:
    """A copy of `model` in eval mode with every foldable BatchNorm folded into its convolution
    (replaced by nn.Identity); `model` itself is untouched. `example`: an input to trace with
    (default (1, 3, 64, 64) random on the model's device). `fused.fused_pairs` lists the folds."""
    fused = copy.deepcopy(model).eval()
    pairs = foldable_pairs(fused, _example_input(fused) if example is None else example)
    for conv_name, norm_name in pairs:
        _set(fused, conv_name, _folded(fused.get_submodule(conv_name), fused.get_submodule(norm_name)))
        _set(fused, norm_name, nn.Identity())
    fused.fused_pairs = pairs
    left = sum(isinstance(m, _norm_types()) for m in fused.modules())
    log.info("fuse: folded %d BatchNorm layers into convolutions (%d left as they are)", len(pairs), left)
    return fused


class _Autocast(nn.Module):
    """Runs the wrapped module under autocast(dtype) and returns float32 tensors."""

    def __init__(self, module: nn.Module, dtype: torch.dtype, channels_last: bool) -> None:
        nn.Module.__init__(self)
        self.module = module
        self.dtype = dtype
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor) -> Any:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=x.device.type, dtype=self.dtype):
            out = self.module(x)
        return _to_float(out)


def _to_float(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, dict):
        return type(out)((k, _to_float(v)) for k, v in out.items())
    if isinstance(out, (list, tuple)):
        return type(out)(_to_float(v) for v in out)
    return out


class _ChannelsLast(nn.Module):
    """Feeds the wrapped module channels-last inputs (its weights are channels-last already)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> Any:
        return self.module(x.contiguous(memory_format=torch.channels_last))


def optimize(model: nn.Module, *, fuse_bn: bool = True, channels_last: bool = False, compile: bool = False,
             dtype: torch.dtype | None = None, example: torch.Tensor | None = None) -> nn.Module:
    """An inference copy of `model` (eval mode; the original is untouched): BatchNorm folded into
    the convolutions (`fuse_bn`), channels-last weights and inputs (`channels_last`: faster
    convolutions on CPU with oneDNN and on tensor-core GPUs), `torch.compile` (`compile`) and
    autocast at `dtype` (torch.float16 / torch.bfloat16; outputs come back as float32).

    Takes and returns what `model` does. For a torchvision detector only its backbone (HRNetV2p,
    the heavy part) is optimised; the RPN and RoI heads stay as they are. Tolerances against the
    unoptimised model: `hrnet.runtime.TOLERANCES`.
    """
    if dtype not in DTYPES:
        raise ConfigError(f"optimize(dtype={dtype}): choose None (float32), torch.float16 or torch.bfloat16")
    if _is_detector(model):
        detector = copy.deepcopy(model).eval()
        detector.backbone = optimize(detector.backbone, fuse_bn=fuse_bn, channels_last=channels_last,
                                     compile=compile, dtype=dtype, example=example)
        detector.backbone.out_channels = model.backbone.out_channels
        return detector
    out = fuse(model, example=example) if fuse_bn else copy.deepcopy(model).eval()
    if channels_last:
        out = out.to(memory_format=torch.channels_last)
    if dtype is not None:
        out = _Autocast(out, dtype, channels_last)
    elif channels_last:
        out = _ChannelsLast(out)
    if compile:
        if not hasattr(torch, "compile"):
            raise ConfigError("optimize(compile=True) needs torch >= 2.0 (torch.compile)")
        out = torch.compile(out)
    return out


def _is_detector(model: nn.Module) -> bool:
    from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN

    return isinstance(model, GeneralizedRCNN)
