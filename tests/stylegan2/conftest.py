"""Fixtures of the StyleGAN2 parity tests (copied from the reference fixtures, see tests/fixtures/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cfs_core.stylegan2 import Generator, infer_generator_config

SG2 = Path(__file__).parent.parent / "fixtures" / "stylegan2"


@pytest.fixture(scope="session")
def fx() -> dict[str, torch.Tensor]:
    return load_file(SG2 / "tiny_fixture.safetensors")


@pytest.fixture(scope="session")
def tiny_g_state() -> dict[str, torch.Tensor]:
    return load_file(SG2 / "tiny_g_weights.safetensors")


@pytest.fixture(scope="session", params=[False, True], ids=["scaled", "fused"])
def tiny_g(request: pytest.FixtureRequest, tiny_g_state: dict[str, torch.Tensor]) -> Generator:
    """The reference tiny generator, once per modulated-conv path."""
    g = Generator(infer_generator_config(tiny_g_state))
    g.load_state_dict(tiny_g_state, strict=True)
    g.eval().requires_grad_(False)
    g.set_fused_modconv(request.param)
    return g
