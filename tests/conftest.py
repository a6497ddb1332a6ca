"""Fixtures shared by all tests; plain helpers live in tests/helpers.py."""

import pytest

import hrnet
from helpers import tiny_spec


@pytest.fixture
def tiny() -> hrnet.HRNetSpec:
    """Widths 8/16/32/64, one block per branch, one module per stage."""
    return tiny_spec()
