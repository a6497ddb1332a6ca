"""Test helpers (importable as `helpers`: tests/ is on pytest's pythonpath): paths to ../shared, which
are skipped when absent, and a tiny architecture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import hrnet

SHARED = Path(__file__).resolve().parents[2] / "shared"
OFFICIAL = SHARED / "fixtures" / "official"
DATA = SHARED / "data"

torch.set_num_threads(min(2, torch.get_num_threads()))


def tiny_spec(**changes) -> hrnet.HRNetSpec:
    """Widths 8/16/32/64, one block per branch, one module per stage: fast on CPU."""
    stage = hrnet.StageSpec
    spec = hrnet.HRNetSpec(stages=(
        stage(modules=1, block="bottleneck", blocks=(1,), channels=(8,)),
        stage(modules=1, block="basic", blocks=(1, 1), channels=(8, 16)),
        stage(modules=1, block="basic", blocks=(1, 1, 1), channels=(8, 16, 32)),
        stage(modules=1, block="basic", blocks=(1, 1, 1, 1), channels=(8, 16, 32, 64)),
    ))
    return spec.replace(**changes) if changes else spec


def official(name: str) -> tuple[dict, Path, dict]:
    """(fixture json, checkpoint path, {"input", "outputs"}) of an official fixture, or skip."""
    meta_path = OFFICIAL / f"{name}.json"
    if not meta_path.is_file():
        pytest.skip(f"official fixtures not present at {OFFICIAL}")
    io = torch.load(OFFICIAL / f"{name}_io.pt", weights_only=True)
    return json.loads(meta_path.read_text()), OFFICIAL / f"{name}.pth", io


def manifest() -> dict:
    path = OFFICIAL / "full_size_manifest.json"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return json.loads(path.read_text())


def shared_data(*parts: str) -> Path:
    """shared/data/<parts...> (a folder or file), or skip the test when it is absent."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data {path} is absent")
    return path


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread (autouse where a conftest imports it): on a shared 2-core machine two
    threads spin against other processes and training steps run ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def randomize_batchnorm(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """BatchNorm statistics and affine parameters away from 0/1, so that eval-mode BatchNorm matters
    (as the official fixtures are made)."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            with torch.no_grad():
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.1)
    return model


def random_bn(prefix: str, channels: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The five tensors of a BatchNorm2d under `prefix` (e.g. "decode_head.convs.0.bn."), non-trivial."""
    return {prefix + "weight": torch.rand(channels, generator=generator) + 0.5,
            prefix + "bias": torch.randn(channels, generator=generator) * 0.1,
            prefix + "running_mean": torch.randn(channels, generator=generator) * 0.1,
            prefix + "running_var": torch.rand(channels, generator=generator) + 0.5,
            prefix + "num_batches_tracked": torch.tensor(7)}


def bn_eval(x: torch.Tensor, state: dict, prefix: str) -> torch.Tensor:
    """Eval-mode BatchNorm from raw tensors (an independent computation for parity tests)."""
    return torch.nn.functional.batch_norm(x, state[prefix + "running_mean"], state[prefix + "running_var"],
                                          state[prefix + "weight"], state[prefix + "bias"], training=False, eps=1e-5)
