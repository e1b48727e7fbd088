"""The demo pack's e4e encoder trainer and its evaluation (a tiny random generator, a few steps)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from cfs_core.errors import InputError
from cfs_core.methods import ProgressEvent
from cfs_core.nets.e4e import load_e4e, save_e4e_native
from cfs_core.nets.evaluator import Evaluator, EvaluatorConfig
from cfs_core.nets.identity import IdentityNet
from cfs_core.nets.irse import IRSEBackbone, IRSEConfig
from cfs_core.stylegan2 import Generator, GeneratorConfig
from cfs_core.training.data import ATTRIBUTES, DataSpec, face_seed, make_batch
from cfs_core.training.encoder import (
    EncoderTrainOptions,
    canonical_latents,
    encoder_batch,
    evaluate_encoder,
    face_latents,
    generator_fingerprint,
    train_encoder,
)
from cfs_core.training.generator import PARAM_NAMES, params_from_z
from cfs_core.world import sample_params

TINY: dict[str, object] = {"batch": 4, "input_size": 32, "stem": 8, "widths": (8, 8, 16, 16), "units": (1, 1, 1, 1),
                           "se_reduction": 4, "lr": 3e-3, "warmup": 0, "checkpoint_every": 2,
                           "image_loss_weight": 1.0, "image_loss_every": 2}


@pytest.fixture(scope="module")
def generator() -> Generator:
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(size=32, style_dim=32, n_mlp=2, channels={4: 16, 8: 16, 16: 8, 32: 8}))
    return g.eval().requires_grad_(False)


def _opts(tmp: Path | None, steps: int, **kw: object) -> EncoderTrainOptions:
    return EncoderTrainOptions(steps=steps, checkpoint_dir=str(tmp) if tmp else None, **{**TINY, **kw})  # type: ignore[arg-type]


def _interrupt_at(step: int) -> Callable[[ProgressEvent], None]:
    def progress(event: ProgressEvent) -> None:
        if event.stage == "train" and event.step == step:
            raise KeyboardInterrupt

    return progress


def test_canonical_latents_are_one_per_face() -> None:
    z = torch.randn(64, 128, generator=torch.Generator().manual_seed(3))
    c = canonical_latents(z)
    assert params_from_z(c) == params_from_z(z)  # the same faces
    assert torch.allclose(c.pow(2).mean(dim=1), torch.ones(64), atol=1e-5)  # a fixed point of PixelNorm
    k = len(PARAM_NAMES)
    face = (z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True)))[:, :k]
    rest = torch.randn(64, 128 - k)
    rest = rest * ((128 - face.pow(2).sum(1, keepdim=True)) / rest.pow(2).sum(1, keepdim=True)).sqrt()
    other = 1.7 * torch.cat([face, rest], dim=1)  # the same faces, other nuisance coordinates and scale
    assert params_from_z(other) == params_from_z(z)
    assert torch.allclose(canonical_latents(other), c, atol=1e-5)
    assert not torch.equal(z, c) and torch.equal(canonical_latents(c), c)
    faces = [sample_params(face_seed("test", i)) for i in range(20)]  # any world face has its latent
    assert params_from_z(face_latents(faces, 128)) == faces


def test_batches_are_deterministic_and_mixed(generator: Generator) -> None:
    opts = _opts(None, 1, batch=5, sample_fraction=0.4)
    a, b = encoder_batch(generator, 3, opts), encoder_batch(generator, 3, opts)
    assert torch.equal(a.images, b.images) and torch.equal(a.w, b.w)
    assert a.images.shape == (5, 3, 32, 32) and a.w.shape == (5, 32) and a.n_renders == 3
    assert float(a.images.abs().max()) <= 1.0
    assert not torch.equal(a.w, encoder_batch(generator, 4, opts).w)
    with torch.no_grad():  # the sample part is the generator's own drawing of its w
        assert torch.allclose(a.images[3:], generator.synthesis(a.w[3:], noise="const").clamp(-1, 1))


def test_training_is_finite_and_resumes_bit_identically(tmp_path: Path, generator: Generator) -> None:
    whole, report = train_encoder(generator, _opts(tmp_path / "a", 3))
    assert report["steps"] == 3 and report["images_seen"] == 12 and math.isfinite(report["final_loss"])
    losses = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["losses"].tolist()
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    assert whole.n_latent == generator.n_latent == 8 and whole.generator is None
    assert not any(p.requires_grad for p in whole.parameters())
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C after step 1 leaves a checkpoint at step 1
        train_encoder(generator, _opts(tmp_path / "b", 3), _interrupt_at(1))
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["step"] == 1
    resumed, rep_b = train_encoder(generator, _opts(tmp_path / "b", 3))
    assert rep_b["resumed_from"] == 1 and rep_b["steps"] == 3
    for (k, v), w in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(v, w), k
    with pytest.raises(InputError):  # other settings, same folder
        train_encoder(generator, _opts(tmp_path / "b", 3, lr=1e-2))
    torch.manual_seed(1)
    other = Generator(generator.config).eval()
    assert generator_fingerprint(other) != generator_fingerprint(generator)
    with pytest.raises(InputError):  # another generator, same folder
        train_encoder(other, _opts(tmp_path / "b", 3))


def test_saved_encoder_round_trips(tmp_path: Path, generator: Generator) -> None:
    e4e, _ = train_encoder(generator, _opts(None, 2, image_loss_weight=0.0))
    path = save_e4e_native(tmp_path / "encoder.safetensors", e4e, extra_metadata={"component": "encoder"})
    loaded = load_e4e(path)
    assert loaded.config == e4e.config and loaded.generator is None
    for size in (32, 64):
        images = make_batch(DataSpec(size=size), range(3)).images
        assert torch.equal(loaded.invert(images), e4e.invert(images))
    assert loaded.invert(images).shape == (3, 8, 32)


def test_evaluation_figures(generator: Generator) -> None:
    e4e, _ = train_encoder(generator, _opts(None, 1, image_loss_weight=0.0))
    torch.manual_seed(0)
    evaluator = Evaluator(EvaluatorConfig(size=32, widths=(4, 8))).eval()
    identity = IdentityNet(IRSEBackbone(IRSEConfig(stem=8, widths=(8, 8), units=(1, 1), input_size=16,
                                                   embedding_dim=8, se_reduction=4)))
    events: list[ProgressEvent] = []
    out = evaluate_encoder(e4e, generator, evaluator, identity, n=4, batch=2, samples=3, progress=events.append)
    assert out["n"] == 4 and out["size"] == 32 and out["samples"] == 3
    assert 0.0 <= out["l1"] <= 2.0 and 0.0 <= out["baseline_l1"] <= 2.0
    assert -1.0 <= out["identity_similarity"] <= 1.0
    for key in ("attribute_accuracy", "input_attribute_accuracy", "attribute_agreement"):
        assert set(out[key]) <= set(ATTRIBUTES) and out[key]
        assert all(0.0 <= v <= 1.0 for v in out[key].values()) and 0.0 <= out[f"mean_{key}"] <= 1.0
    for key in ("latent_rel_error", "sample_latent_rel_error"):
        assert math.isfinite(out[key]) and out[key] >= 0
    assert 0 <= out["sample_l1"] <= 2
    assert events[-1].step == events[-1].total == 7
    plain = evaluate_encoder(e4e, generator, n=2, batch=2, samples=0, canonical=False)
    assert not {"identity_similarity", "attribute_accuracy", "latent_rel_error", "sample_l1"} & set(plain)
