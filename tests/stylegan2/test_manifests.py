"""Key/shape/order equality with the full-size public configurations, built on the meta device."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from cfs_core.stylegan2 import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, describe_generator_config

MANIFESTS = Path(__file__).parent.parent / "fixtures" / "manifests"

CASES: dict[str, Callable[[], nn.Module]] = {
    "stylegan2_generator_1024_cm2": lambda: Generator(GeneratorConfig.from_multiplier(1024, 512, 8, 2)),
    "stylegan2_generator_256_cm2": lambda: Generator(GeneratorConfig.from_multiplier(256, 512, 8, 2)),
    "stylegan2_discriminator_1024_cm2": lambda: Discriminator(DiscriminatorConfig.from_multiplier(1024, 2)),
    "stylegan2_discriminator_256_cm2": lambda: Discriminator(DiscriminatorConfig.from_multiplier(256, 2)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_manifest(name: str) -> None:
    manifest = json.loads((MANIFESTS / f"{name}.json").read_text())
    with torch.device("meta"):
        module = CASES[name]()
    got = [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in module.state_dict().items()]
    want = [(k, v["shape"], v["dtype"]) for k, v in manifest["state_dict"].items()]
    assert got == want
    assert sum(p.numel() for p in module.parameters()) == manifest["num_parameters"]
    assert [k for k, v in module.state_dict().items() if k not in dict(module.named_parameters())] == manifest["buffers"]


def test_config_f_facts() -> None:
    facts = describe_generator_config(GeneratorConfig.from_multiplier(1024))
    assert facts["parameters"] == 30_370_060
    assert facts["wplus_shape"] == [18, 512]
    assert facts["noise_layers"] == 17
    # StyleCLIP's STYLESPACE_DIMENSIONS: 26 entries, 9,088 channels, 6,048 outside ToRGB (spec §1.7).
    assert facts["stylespace_layers"] == 26
    assert facts["stylespace_channels"] == 9088
    assert facts["stylespace_channels_non_torgb"] == 6048
    with torch.device("meta"):
        g = Generator(GeneratorConfig.from_multiplier(1024))
    assert g.stylespace_dims == [512] * 15 + [256] * 3 + [128] * 3 + [64] * 3 + [32] * 2
    assert [s.index for s in g.stylespace if s.is_torgb] == list(range(1, 26, 3))
    assert g.stylespace[-1].wplus_slot == 17


def test_256_facts() -> None:
    facts = describe_generator_config(GeneratorConfig.from_multiplier(256))
    assert facts["wplus_shape"] == [14, 512]
    assert facts["stylespace_layers"] == 20
    assert facts["stylespace_channels"] == 8704
    assert facts["stylespace_channels_non_torgb"] == 5760
