"""Shared fixtures of the CLI tests: the tiny e4e file and one torch thread (helpers: ``cli_helpers``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

FIX = Path(__file__).parent.parent / "fixtures"


@pytest.fixture(scope="session")
def encoder_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny e4e parity fixture written as a cfs native encoder file."""
    from cfs_core.nets.e4e import E4E, Encoder4Editing, infer_e4e_config, save_e4e_native

    sd = load_file(FIX / "e4e" / "tiny_e4e_weights.safetensors")
    enc = Encoder4Editing(infer_e4e_config(sd))
    enc.load_state_dict(sd)
    latent_avg = load_file(FIX / "e4e" / "tiny_e4e_fixture.safetensors")["in.latent_avg"]
    return save_e4e_native(tmp_path_factory.mktemp("enc") / "encoder.safetensors", E4E(enc, latent_avg))


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread: None) -> None:
    """Every CLI test module runs on one torch thread (tests/conftest.py: one_thread)."""
