"""The demo generator's code stage (:mod:`cfs_core.training.codes`) on tiny models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from typer.testing import Result

from cfs_core.checkpoints import torch_load_safe
from cfs_core.errors import InputError
from cfs_core.nets.e4e import E4E, save_e4e_native
from cfs_core.stylegan2 import load_generator
from cfs_core.stylegan2.io import save_native
from cfs_core.training.autoencode import AutoencodeOptions, additive_features, train_generator_and_encoder
from cfs_core.training.codes import CodeModel, CodeTrainOptions, fit_embedding, train_codes
from cfs_core.training.generator import GeneratorOptions

Cfs = Callable[..., Result]


@pytest.fixture(scope="module")
def start(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny generator + encoder pair from two autoencoder steps."""
    folder = tmp_path_factory.mktemp("codes-start")
    go = GeneratorOptions(size=32, style_dim=32, n_mlp=2, channels=(16, 16, 8, 8))
    opts = AutoencodeOptions(generator=go, ae_steps=2, ae_batch=2, map_pairs=16, map_steps=2, map_batch=4, input_size=32,
                             widths=(8, 8, 16, 16))
    g, e4e, _ = train_generator_and_encoder(opts)
    save_native(folder / "g.safetensors", g)
    save_e4e_native(folder / "e.safetensors", e4e)
    return folder / "g.safetensors", folder / "e.safetensors"


def test_fit_embedding_recovers_an_additive_mapping(start: tuple[Path, Path]) -> None:
    g = load_generator(start[0]).generator
    truth = torch.randn(additive_features(torch.randn(1, 32)).shape[1], 32, generator=torch.Generator().manual_seed(1))

    class Additive(torch.nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return additive_features(z) @ truth

    g.style = Additive()  # type: ignore[assignment]
    a, explained = fit_embedding(g, 2048, seed=0)
    z = torch.randn(64, 32, generator=torch.Generator().manual_seed(9))  # one-hots sum to the constant: compare codes
    assert explained > 0.999 and torch.allclose(additive_features(z) @ a, additive_features(z) @ truth, atol=1e-2)


def test_step_zero_draws_what_the_start_generator_draws(start: tuple[Path, Path]) -> None:
    g = load_generator(start[0]).generator
    e4e = E4E.from_file(start[1])
    z = torch.randn(256, 32, generator=torch.Generator().manual_seed(5))
    a, explained = fit_embedding(g, 4096, seed=0)
    model = CodeModel(g, e4e.encoder, a)
    with torch.no_grad():
        w = g.style(z)
        residual = float(((model.codes(z) - w) ** 2).mean() / w.var(0).mean())
    assert -1.0 <= explained <= 1.0 and residual == pytest.approx(1.0 - explained, abs=0.1)


def test_code_stage_learns_resumes_and_ships_a_pair(start: tuple[Path, Path], tmp_path: Path) -> None:
    opts = CodeTrainOptions(generator=str(start[0]), encoder=str(start[1]), steps=30, batch=4, lr=5e-3, fit_latents=512,
                            map_steps=3, map_batch=8, checkpoint_dir=str(tmp_path / "ck"), checkpoint_every=10)
    g, e4e, report = train_codes(opts)
    losses = torch_load_safe(tmp_path / "ck" / "codes" / "checkpoint.pt")["losses"]
    assert len(losses) == 30 and float(losses[-5:].mean()) < float(losses[:5].mean())
    assert report["code_steps"] == 30 and report["code_images_seen"] == 120 and "mapping_final_mse" in report
    assert g.latent_avg is not None and e4e.opts["w_code"] is True
    w = e4e.invert(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert w.shape == (2, g.n_latent, 32) and torch.equal(w[:, 0], w[:, -1])
    again, _, _ = train_codes(opts)  # both loops resume from their finished checkpoints
    assert all(torch.equal(x, y) for x, y in zip(g.state_dict().values(), again.state_dict().values()))


def test_cli_codes_until_writes_nothing_then_finishes(cfs: Cfs, start: tuple[Path, Path], tmp_path: Path) -> None:
    out, enc = tmp_path / "g.safetensors", tmp_path / "e.safetensors"
    common = ["--out", out, "--generator", start[0], "--encoder", start[1], "--encoder-out", enc, "--steps", "3",
              "--batch", "2", "--map-steps", "2", "--checkpoint-dir", tmp_path / "ck"]
    part = cfs("demo", "train", "codes", *common, "--until", "1")
    assert part.exit_code == 0 and "stopped after step 1 of 3" in part.output, part.output
    assert not out.exists() and not enc.exists()
    rest = cfs("demo", "train", "codes", *common)
    assert rest.exit_code == 0, rest.output
    assert load_generator(out).generator.size == 32 and E4E.from_file(enc).n_latent == load_generator(out).generator.n_latent
    bad = cfs("demo", "train", "codes", "--out", out, "--generator", start[0], "--encoder", start[1], "--encoder-out", enc,
              "--until", "1")
    assert bad.exit_code != 0 and "--until needs --checkpoint-dir" in bad.output
    source = cfs("demo", "train", "codes", *common, "--source", "renders")  # refused before any training
    assert source.exit_code != 0 and "source must be 'additive' or 'mapping'" in source.output


def test_renders_and_labels_come_from_one_scene() -> None:
    from cfs_core.training.generator import params_from_z, render_targets, render_targets_and_labels
    from cfs_core.world import LABEL_NAMES, render_labels

    params = params_from_z(torch.randn(3, 32, generator=torch.Generator().manual_seed(2)))
    for size in (64, 32):
        images, labels = render_targets_and_labels(params, size)
        assert torch.equal(images, render_targets(params, size)) and labels is not None  # bit-identical renders
        assert labels.shape == (3, size, size) and labels.dtype == torch.long
    assert torch.equal(render_targets_and_labels(params, 64)[1][0], torch.from_numpy(render_labels(params[0], 64).copy()).long())
    assert int(labels.max()) < len(LABEL_NAMES) and render_targets_and_labels(params, 32, labels=False)[1] is None


def test_detail_weights_and_the_weighted_l1() -> None:
    from cfs_core.training.codes import DETAIL_PARTS, detail_weights, weighted_l1
    from cfs_core.world import LABEL_NAMES

    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[0, :2, :2] = LABEL_NAMES.index("eye_g")  # a quarter of the pixels: glasses
    labels[0, 3, 3] = LABEL_NAMES.index("skin")
    weights = detail_weights(labels, 8.0)
    assert "eye_g" in DETAIL_PARTS and float(weights[0, 0, 0]) == 8.0 and float(weights[0, 3, 3]) == 1.0
    target = torch.zeros(1, 3, 4, 4)
    out = target.clone()
    out[..., :2, :2] = 1.0  # wrong only on the glasses
    plain = weighted_l1(out, target, None)
    assert float(plain) == pytest.approx(0.25 + 0.25)  # full resolution + the 2x2 average pool
    assert torch.equal(weighted_l1(out, target, torch.ones(1, 4, 4)), plain)
    # weights normalised to mean 1: the glasses quarter now carries 8 / (8 + 3) of the loss at both levels
    assert float(weighted_l1(out, target, weights)) == pytest.approx(2 * 8 / 11, rel=1e-6)


def test_code_stage_from_the_mapping_keeps_the_mapping(start: tuple[Path, Path]) -> None:
    opts = CodeTrainOptions(generator=str(start[0]), encoder=str(start[1]), steps=4, batch=2, source="mapping",
                            detail_weight=4.0)
    g, _, report = train_codes(opts)
    before = load_generator(start[0]).generator
    assert all(torch.equal(x, y) for x, y in zip(before.style.state_dict().values(), g.style.state_dict().values()))
    assert not torch.equal(before.conv1.conv.weight, g.conv1.conv.weight)  # the synthesis did learn
    assert report["code_steps"] == 4 and "mapping_final_mse" not in report and "start_fit_r2" not in report
    assert '"source": "mapping"' in opts.signature("codes") and "source" not in CodeTrainOptions().signature("codes")
    with pytest.raises(InputError, match="source must be"):
        CodeTrainOptions(source="renders")


def test_separate_codes_pulls_named_rows_apart_and_keeps_the_rest() -> None:
    from cfs_core.training.autoencode import feature_slices
    from cfs_core.training.codes import code_spread, separate_codes
    from cfs_core.world import SPECS

    slices = feature_slices()
    width = additive_features(torch.zeros(1, 32)).shape[1]
    assert slices[list(SPECS)[0]].start == 1 and max(s.stop for s in slices.values()) == width
    assert slices["eye_color"].stop - slices["eye_color"].start == len(SPECS["eye_color"].choices)
    a = torch.zeros(width, 16)
    a[slices["hair"]] = torch.eye(16)[: len(SPECS["hair"].choices)]  # hair: unit rows, pairwise sqrt(2) apart
    out = separate_codes(a, ("eye_color", "expression", "nose_width"), 0.8, seed=0)
    assert torch.equal(out, separate_codes(a, ("eye_color", "expression", "nose_width"), 0.8, seed=0))  # seeded
    changed = torch.zeros(width, dtype=torch.bool)
    for name in ("eye_color", "expression", "nose_width"):
        changed[slices[name]] = True
    assert torch.equal(out[~changed], a[~changed])
    eye = out[slices["eye_color"]]
    assert float(eye.mean(0).norm()) < 0.1 * 0.8  # the average code moves little
    assert torch.allclose(eye.norm(dim=1), torch.full((len(eye),), 0.8), atol=1e-5)
    before, after = code_spread(a), code_spread(out)
    assert before["eye_color"] == 0.0 and after["eye_color"] > 0.8 and after["expression"] > 0.8
    assert after["nose_width"] == pytest.approx(0.8, abs=1e-5) and after["hair"] == pytest.approx(2 ** 0.5, abs=1e-5)


def test_separate_needs_known_names_and_the_additive_source() -> None:
    with pytest.raises(InputError, match="unknown parameter"):
        CodeTrainOptions(separate=("eye_colour",))
    with pytest.raises(InputError, match="needs source 'additive'"):
        CodeTrainOptions(separate=("eye_color",), source="mapping")
    assert "separate" not in CodeTrainOptions().signature("codes")
    signature = CodeTrainOptions(separate=("eye_color",)).signature("codes")
    assert '"separate": ["eye_color"]' in signature and '"separate_rows": "fixed"' in signature


def test_code_stage_keeps_the_separated_rows_fixed(start: tuple[Path, Path]) -> None:
    from cfs_core.training.codes import code_spread, separate_codes

    opts = CodeTrainOptions(generator=str(start[0]), encoder=str(start[1]), steps=2, batch=2, fit_latents=256,
                            map_steps=2, map_batch=4, separate=("expression",), separate_scale=2.0)
    _, _, report = train_codes(opts)
    g = load_generator(start[0]).generator
    a, _ = fit_embedding(g, 256, seed=0)
    start_spread = code_spread(separate_codes(a, ("expression",), 2.0, seed=0))
    assert report["code_spread"]["expression"] == pytest.approx(start_spread["expression"], abs=1e-4)  # kept fixed
    assert report["code_spread"]["hair"] != pytest.approx(start_spread["hair"], abs=1e-6)  # the other rows train
