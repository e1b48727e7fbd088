"""The real (tiny) networks satisfy the resource protocols, and the registered losses run on them."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cfs_core.clip import ClipModel
from cfs_core.guidance import Guidance, text_digest
from cfs_core.losses import LossInputs
from cfs_core.nets.e4e import E4E, Encoder4Editing, infer_e4e_config
from cfs_core.nets.identity import IdentityNet
from cfs_core.nets.parsing import Parser
from cfs_core.nets.protocols import ClipEncoder, FaceParser, IdentityEncoder, ImageEncoder
from cfs_core.resources import Resources
from cfs_core.stylegan2 import load_generator
from cfs_registry.plugins import PluginHost

pytestmark = pytest.mark.usefixtures("one_thread")

FIX = Path(__file__).parent.parent / "fixtures"
TINY_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def nets() -> dict[str, object]:
    torch.manual_seed(0)
    e4e_sd = load_file(FIX / "e4e" / "tiny_e4e_weights.safetensors")
    encoder = Encoder4Editing(infer_e4e_config(e4e_sd))
    encoder.load_state_dict(e4e_sd)
    generator = load_generator(FIX / "stylegan2" / "ros_converted_tiny.pt").generator
    return {
        "clip": ClipModel.from_open_clip(copy.deepcopy(TINY_CLIP)),
        "identity": IdentityNet.from_file(FIX / "irse" / "tiny_irse_weights.safetensors"),
        "parser": Parser.from_file(FIX / "unet" / "tiny_unet_weights.safetensors"),
        "encoder": E4E(encoder, generator.truncation_center().repeat(encoder.config.style_count, 1)),
        "generator": generator,
    }


def test_networks_implement_the_resource_protocols(nets: dict[str, object]) -> None:
    assert isinstance(nets["clip"], ClipEncoder)
    assert isinstance(nets["identity"], IdentityEncoder)
    assert isinstance(nets["parser"], FaceParser)
    assert isinstance(nets["encoder"], ImageEncoder)


def test_registered_losses_run_on_the_real_networks(nets: dict[str, object]) -> None:
    """Every first-party loss on tiny real nets: finite values; gradients reach the edited
    latents only (not the source latents, not any network weight)."""
    gen = nets["generator"]
    res = Resources()
    for name in ("clip", "identity", "parser"):
        res.provide_value(name, nets[name])
    host = PluginHost()
    w_src = gen.to_wplus(gen.mean_latent(64)).detach()
    w = (w_src + 0.3 * torch.randn_like(w_src)).requires_grad_(True)
    inputs = LossInputs(
        images=gen.synthesis(w), source_images=gen.synthesis(w_src), latents=w, source_latents=w_src,
        guidance=Guidance("text", "red hair", text="red hair", digest=text_digest("red hair")),
        extras={"clip.base": nets["clip"].encode_text(["a face"]),
                "adaptor.A": torch.ones(1, gen.n_latent, gen.style_dim), "adaptor.d": torch.zeros(1, gen.n_latent, gen.style_dim)},
    )
    weights = {loss_id: 1.0 for loss_id in host.losses.ids()}
    total, parts = host_compose(host, weights, res)(inputs)
    assert set(parts) == set(host.losses.ids()) and all(torch.isfinite(torch.tensor(v)) for v in parts.values())
    total.backward()
    assert w.grad is not None and w.grad.abs().sum() > 0
    for name in ("clip", "identity", "parser", "generator"):
        module = nets[name] if name != "clip" else nets["clip"].model  # type: ignore[attr-defined]
        assert all(p.grad is None for p in module.parameters()), name


def test_encoder_inverts_to_the_generator_wplus(nets: dict[str, object]) -> None:
    gen = nets["generator"]
    images = gen.synthesis(gen.mean_latent(8).repeat(2, 1))
    codes = nets["encoder"].invert(images)
    assert codes.shape == (2, gen.n_latent, gen.style_dim)
    assert gen.synthesis(codes).shape == images.shape


def host_compose(host: PluginHost, weights: dict[str, float], res: Resources):  # type: ignore[no-untyped-def]
    from cfs_core.losses import compose

    return compose(host.losses, weights, res, "integration test")
