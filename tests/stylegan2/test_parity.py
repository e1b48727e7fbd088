"""Numeric parity of the shared StyleGAN2 backend with the reference (rosinality/StyleCLIP).

Every generator and discriminator case of the parity fixtures, with the suggested tolerances
(10× the reference's own float32 error), on both modulated-convolution paths.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cfs_core.stylegan2 import Discriminator, Generator, infer_discriminator_config, infer_generator_config

SG2 = Path(__file__).parent.parent / "fixtures" / "stylegan2"
SPEC = json.loads((SG2 / "tiny_config.json").read_text())


def check(actual: torch.Tensor, name: str, fx: dict[str, torch.Tensor]) -> None:
    atol = SPEC["fixture_tensors"][name]["suggested_atol"]
    torch.testing.assert_close(actual, fx[name], atol=atol, rtol=1e-5)


def test_mapping(tiny_g: Generator, fx: dict[str, torch.Tensor]) -> None:
    check(tiny_g.mapping(fx["in.a_z"]), "out.a_w", fx)
    check(tiny_g.get_latent(fx["in.a_z"]), "out.a_w_get_latent", fx)


def test_truncation(tiny_g: Generator, fx: dict[str, torch.Tensor]) -> None:
    img, latent = tiny_g([fx["in.a_z"]], truncation=0.7, truncation_latent=fx["in.b_truncation_latent"],
                         randomize_noise=False, return_latents=True)
    check(img, "out.b_image", fx)
    check(latent, "out.b_latent", fx)
    # The same through the clean API.
    w = tiny_g.truncate(tiny_g.mapping(fx["in.a_z"]), 0.7, fx["in.b_truncation_latent"])
    check(tiny_g.synthesis(w), "out.b_image", fx)


def test_wplus_const_noise(tiny_g: Generator, fx: dict[str, torch.Tensor]) -> None:
    img, latent = tiny_g([fx["in.c_wplus"]], input_is_latent=True, randomize_noise=False)
    assert latent is None
    check(img, "out.c_image", fx)
    check(tiny_g.synthesis(fx["in.c_wplus"], noise="const"), "out.c_image", fx)


def test_explicit_per_sample_noise(tiny_g: Generator, fx: dict[str, torch.Tensor]) -> None:
    noise = [fx[f"in.d_noise_{i}"] for i in range(tiny_g.num_layers)]
    img, _ = tiny_g([fx["in.c_wplus"]], input_is_latent=True, noise=noise)
    check(img, "out.d_image", fx)
    check(tiny_g.synthesis(fx["in.c_wplus"], noise=noise), "out.d_image", fx)


def test_style_mixing(tiny_g: Generator, fx: dict[str, torch.Tensor]) -> None:
    img, latent = tiny_g([fx["in.a_z"], fx["in.e_z2"]], inject_index=3, randomize_noise=False, return_latents=True)
    check(img, "out.e_image", fx)
    check(latent, "out.e_latent", fx)
    mixed = tiny_g.mix(tiny_g.mapping(fx["in.a_z"]), tiny_g.mapping(fx["in.e_z2"]), 3)
    check(mixed, "out.e_latent", fx)


def test_stylespace_out(tiny_g: Generator, fx: dict[str, torch.Tensor]) -> None:
    _, _, styles = tiny_g([fx["in.c_wplus"]], input_is_latent=True, randomize_noise=False,
                          return_latents=True, return_styles=True)
    assert len(styles) == 11
    for i, s in enumerate(styles):
        check(s, f"out.f_s_{i:02d}", fx)
    flat = tiny_g.styles(fx["in.c_wplus"])
    for i, s in enumerate(flat):
        assert s.shape == (2, tiny_g.stylespace[i].channels)
        check(s.view(2, 1, -1, 1, 1), f"out.f_s_{i:02d}", fx)


def test_stylespace_in(tiny_g: Generator, fx: dict[str, torch.Tensor]) -> None:
    edited = [fx[f"in.g_s_edit_{i:02d}"] for i in range(11)]
    img, *_ = tiny_g([edited], input_is_stylespace=True, randomize_noise=False)
    check(img, "out.g_image", fx)
    unedited = [fx[f"out.f_s_{i:02d}"] for i in range(11)]
    check(tiny_g.synthesis_from_styles(unedited), "out.g_image_unedited", fx)
    check(tiny_g.synthesis_from_styles([s.flatten(1) for s in edited]), "out.g_image", fx)


def test_stylespace_table_matches_reference(tiny_g: Generator) -> None:
    table = SPEC["stylespace_table"]
    got = [(s.index, s.name, s.channels, s.resolution, s.wplus_slot) for s in tiny_g.stylespace]
    want = [(r["index"], r["layer"], r["dim(in_channels)"], r["output_resolution"], r["wplus_slot"]) for r in table]
    assert got == want


@pytest.mark.parametrize("batch", ["b8", "b2"])
def test_discriminator(batch: str, fx: dict[str, torch.Tensor]) -> None:
    sd = load_file(SG2 / "tiny_d_weights.safetensors")
    d = Discriminator(infer_discriminator_config(sd))
    d.load_state_dict(sd, strict=True)
    with torch.no_grad():
        check(d.eval()(fx[f"in.disc_images_{batch}"]), f"out.disc_logits_{batch}", fx)


def test_state_dict_order_matches_reference(tiny_g_state: dict[str, torch.Tensor]) -> None:
    g = Generator(infer_generator_config(tiny_g_state))
    assert list(g.state_dict()) == [k for k, *_ in SPEC["state_dict_order_g"]]
    d = Discriminator(infer_discriminator_config(load_file(SG2 / "tiny_d_weights.safetensors")))
    assert list(d.state_dict()) == [k for k, *_ in SPEC["state_dict_order_d"]]
