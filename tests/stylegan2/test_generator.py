"""Behaviour of the generator API beyond the fixtures: batching, noise, gradients, configs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cfs_core.stylegan2 import (
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    channel_table,
    infer_discriminator_config,
    infer_generator_config,
)
from cfs_core.stylegan2.ops import make_kernel, upfirdn2d

SMALL = GeneratorConfig(size=16, style_dim=16, n_mlp=2, channels={4: 16, 8: 12, 16: 8})


@pytest.fixture
def g() -> Generator:
    torch.manual_seed(0)
    return Generator(SMALL).eval()


def test_batched_equals_one_by_one(g: Generator) -> None:
    w = g.to_wplus(g.mapping(torch.randn(3, 16)))
    with torch.no_grad():
        batch = g.synthesis(w)
        single = torch.cat([g.synthesis(w[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=1e-5)


def test_fused_and_scaled_modconv_agree(g: Generator) -> None:
    w = torch.randn(2, g.n_latent, 16)
    with torch.no_grad():
        g.set_fused_modconv(True)
        a = g.synthesis(w)
        g.set_fused_modconv(False)
        b = g.synthesis(w)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_random_noise_is_seedable_and_differs_from_const(g: Generator) -> None:
    w = torch.randn(1, 16)
    with torch.no_grad():
        r1 = g.synthesis(w, noise="random", generator=torch.Generator().manual_seed(5))
        r2 = g.synthesis(w, noise="random", generator=torch.Generator().manual_seed(5))
        r3 = g.synthesis(w, noise="random", generator=torch.Generator().manual_seed(6))
        c = g.synthesis(w, noise="const")
    g.conv1.noise.weight.data.fill_(1.0)  # make sure noise matters in this random-weight model
    with torch.no_grad():
        c2 = g.synthesis(w, noise="const")
        r4 = g.synthesis(w, noise="random", generator=torch.Generator().manual_seed(6))
    assert torch.equal(r1, r2)
    assert torch.equal(r1, c) == torch.equal(r3, c)  # noise weights start at 0: noise has no effect yet
    assert not torch.equal(c2, r4)


def test_noise_spec_errors(g: Generator) -> None:
    with pytest.raises(ValueError, match="const"):
        g.synthesis(torch.randn(1, 16), noise="loud")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="noise maps"):
        g.synthesis(torch.randn(1, 16), noise=[torch.zeros(1, 1, 4, 4)])


def test_gradients_reach_latents_not_weights(g: Generator) -> None:
    g.requires_grad_(False)
    wplus = g.to_wplus(g.mean_latent(64)).clone().requires_grad_(True)
    g.synthesis(wplus).square().mean().backward()
    assert wplus.grad is not None and wplus.grad.abs().sum() > 0
    assert all(p.grad is None for p in g.parameters())
    styles = [s.detach().requires_grad_(True) for s in g.styles(wplus.detach())]
    g.synthesis_from_styles(styles).mean().backward()
    assert all(s.grad is not None for s in styles)


def test_shapes_and_errors(g: Generator) -> None:
    assert g.n_latent == 6 and g.num_layers == 5
    assert g.to_wplus(torch.randn(2, 16)).shape == (2, 6, 16)
    with pytest.raises(ValueError, match="W\\+ of shape"):
        g.to_wplus(torch.randn(2, 5, 16))
    with pytest.raises(ValueError, match="inject_index"):
        g.mix(torch.randn(1, 16), torch.randn(1, 16), 0)
    with pytest.raises(ValueError, match="StyleSpace vectors"):
        g.synthesis_from_styles([torch.randn(1, 16)])


def test_sample_is_deterministic_and_prefix_stable(g: Generator) -> None:
    img4, w4 = g.sample(4, seed=3, truncation=0.7)
    img2, w2 = g.sample(2, seed=3, truncation=0.7)
    torch.testing.assert_close(img4[:2], img2)
    torch.testing.assert_close(w4[:2], w2)
    assert not torch.equal(g.sample(1, seed=4)[1], w4[:1])


def test_truncation_moves_towards_center(g: Generator) -> None:
    center = g.mean_latent(256)
    w = g.mapping(torch.randn(4, 16))
    t = g.truncate(w, 0.5, center)
    torch.testing.assert_close(t - center, 0.5 * (w - center))
    torch.testing.assert_close(g.truncate(w, 1.0, center), w)
    torch.testing.assert_close(g.truncate(g.to_wplus(w), 0.0, center)[:, 3], center.expand(4, -1))


@pytest.mark.parametrize(
    "config",
    [
        SMALL,
        GeneratorConfig(size=64, style_dim=24, n_mlp=3, channels={4: 32, 8: 32, 16: 24, 32: 16, 64: 8}),
        GeneratorConfig(size=16, style_dim=8, n_mlp=1, channels={4: 8, 8: 8, 16: 8}, blur_kernel=(1, 2, 1)),
    ],
)
def test_config_inferred_from_weights(config: GeneratorConfig) -> None:
    sd = Generator(config).state_dict()
    assert infer_generator_config(sd, lr_mlp=config.lr_mlp) == config
    dconfig = DiscriminatorConfig(config.size, config.channels, config.blur_kernel)
    assert infer_discriminator_config(Discriminator(dconfig).state_dict()) == dconfig


def test_config_json_round_trip() -> None:
    for cfg in (SMALL, GeneratorConfig.from_multiplier(1024)):
        assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    assert GeneratorConfig.from_dict({"size": 256, "channel_multiplier": 2}).channels == channel_table(256, 2)
    with pytest.raises(ValueError, match="unknown generator config keys"):
        GeneratorConfig.from_dict({"size": 32, "colour": 1})
    with pytest.raises(ValueError, match="power of two"):
        GeneratorConfig(size=48)


def test_channel_table() -> None:
    assert channel_table(1024, 2) == {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32}
    assert channel_table(128, 1, channel_max=64) == {4: 64, 8: 64, 16: 64, 32: 64, 64: 64, 128: 64}


def _upfirdn_loop(x: torch.Tensor, k: torch.Tensor, up: int, down: int, pad: tuple[int, int]) -> torch.Tensor:
    """Textbook definition: zero-insert, pad, true convolution (flipped kernel), subsample."""
    n, c, h, w = x.shape
    z = torch.zeros(n, c, h * up, w * up)
    z[:, :, ::up, ::up] = x
    z = F.pad(z, (pad[0], pad[1], pad[0], pad[1]))
    kh, kw = k.shape
    oh, ow = z.shape[2] - kh + 1, z.shape[3] - kw + 1
    out = torch.zeros(n, c, oh, ow)
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = (z[:, :, i : i + kh, j : j + kw] * k.flip(0, 1)).sum((2, 3))
    return out[:, :, ::down, ::down]


@pytest.mark.parametrize(("up", "down", "pad"), [(2, 1, (2, 1)), (1, 1, (1, 1)), (1, 2, (2, 2)), (1, 1, (-1, 0))])
def test_upfirdn2d_is_a_true_convolution(up: int, down: int, pad: tuple[int, int]) -> None:
    x = torch.randn(2, 3, 6, 6)
    k = torch.arange(1.0, 13.0).view(3, 4)  # asymmetric: a missing flip would show
    got = upfirdn2d(x, k, up=up, down=down, pad=pad)
    torch.testing.assert_close(got, _upfirdn_loop(x, k, up, down, pad))
    size = (6 * up + pad[0] + pad[1] - 4) // down + 1
    assert got.shape[-1] == size


def test_make_kernel() -> None:
    k = make_kernel([1, 3, 3, 1], gain=4)
    assert k.shape == (4, 4)
    assert k.sum().item() == pytest.approx(4.0)
    assert k[0, 0].item() == pytest.approx(4 / 64)
