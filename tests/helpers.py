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
