"""``cfs demo train|eval`` for the generator, CLIP, identity net and encoder (one or two steps each)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from typer.testing import Result

from cfs_core.clip import ClipModel
from cfs_core.nets.e4e import E4E
from cfs_core.nets.identity import IdentityNet
from cfs_core.stylegan2 import load_generator

Cfs = Callable[..., Result]


def test_generator_train_and_eval(cfs: Cfs, tmp_path: Path) -> None:
    out = tmp_path / "g.safetensors"
    result = cfs("demo", "train", "generator", "--out", out, "--steps", "1", "--batch", "2", "--size", "32",
                 "--style-dim", "32", "--n-mlp", "2", "--channels", "16,16,8,8", "--checkpoint-dir", tmp_path / "ck")
    assert result.exit_code == 0, result.output
    g = load_generator(out).generator
    assert (g.size, g.style_dim) == (32, 32) and g.latent_avg is not None
    result = cfs("demo", "train", "generator", "--out", out, "--channels", "16,16", "--size", "32")
    assert result.exit_code == 2 and "needs 4 widths" in result.output


def test_clip_train_and_eval(cfs: Cfs, tmp_path: Path) -> None:
    out = tmp_path / "c.safetensors"
    result = cfs("demo", "train", "clip", "--out", out, "--steps", "1", "--batch", "4", "--pool", "6")
    assert result.exit_code == 0, result.output
    clip = ClipModel.from_file(out)
    assert clip.generated_mode == "normalized" and clip.image_size == (64, 64)
    assert next(clip.model.parameters()).dtype == torch.float32  # fp16 on disk, fp32 in memory
    result = cfs("demo", "eval", "clip", out, "--n", "3", "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert 0.0 <= figures["mean_attribute_accuracy"] <= 1.0 and set(figures["per_style"]) == {"photo", "clipart", "sketch"}
    fine = tmp_path / "c8.safetensors"
    result = cfs("demo", "train", "clip", "--out", fine, "--steps", "0", "--pool", "1", "--patch", "8", "--vision-layers", "1")
    assert result.exit_code == 0, result.output
    vision = ClipModel.from_file(fine).model.visual
    assert vision.conv1.kernel_size == (8, 8) and len(vision.transformer.resblocks) == 1
    result = cfs("demo", "train", "clip", "--out", fine, "--patch", "10")
    assert result.exit_code == 2 and "must divide the image side" in result.output
    grown = tmp_path / "c128.safetensors"  # the patch-8 CLIP grown to 128 px / patch 16, fine-tuned 0 steps
    result = cfs("demo", "train", "clip", "--out", grown, "--steps", "0", "--pool", "1", "--patch", "16",
                 "--vision-layers", "1", "--image-size", "128", "--init", fine, "--full")
    assert result.exit_code == 0, result.output
    big = ClipModel.from_file(grown)
    assert big.image_size == (128, 128) and big.model.visual.conv1.kernel_size == (16, 16)
    result = cfs("demo", "train", "clip", "--out", tmp_path / "x.safetensors", "--steps", "0", "--pool", "1",
                 "--vision-layers", "1", "--init", fine)  # patch 16 at 64 px: a different patch grid
    assert result.exit_code == 2 and "only the vision patch may grow" in result.output
    assert not (tmp_path / "x.safetensors").exists()
    result = cfs("demo", "train", "clip", "--out", tmp_path / "f.safetensors", "--steps", "1", "--batch", "2",
                 "--pool", "2", "--vision-layers", "1", "--negatives", "2", "--focus", "eye_color=4,eyebrows=2",
                 "--matched-negatives", "--groups", "2")
    assert result.exit_code == 0, result.output
    from safetensors import safe_open

    with safe_open(str(tmp_path / "f.safetensors"), "pt") as f:
        report = json.loads(f.metadata()["training"])
    assert report["options"]["matched"] is True and report["options"]["groups"] == 2
    assert report["final_loss"] == report["final_loss"]  # the ranking loss ran (finite, not NaN)
    assert report["options"]["negatives"] == 2 and report["options"]["focus"] == [["eye_color", 4.0], ["eyebrows", 2.0]]
    result = cfs("demo", "train", "clip", "--out", tmp_path / "y.safetensors", "--focus", "eye_colour=4")
    assert result.exit_code == 2 and "focus 'eye_colour=4'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "y.safetensors").exists()


def test_clip_base_is_the_mean_unit_embedding_of_world_cliparts(cfs: Cfs, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from cfs_core.nets.protocols import unit
    from cfs_core.training.clip import build_clip
    from cfs_core.training.data import DataSpec, render_item

    clip_file = build_clip().save(tmp_path / "c.safetensors")
    out = tmp_path / "base.safetensors"
    result = cfs("demo", "train", "clip-base", "--out", out, "--clip", clip_file, "--n", "3", "--size", "64")
    assert result.exit_code == 0, result.output
    vector = load_file(str(out))["clip_base"]
    clip = ClipModel.from_file(clip_file)
    cliparts = [render_item(DataSpec(size=64, styles=("clipart",), split="val"), i).image for i in range(3)]
    expected = unit(clip.encode_images(cliparts)).mean(0)
    assert vector.shape == (128,) and 0.0 < float(vector.norm()) <= 1.0
    torch.testing.assert_close(vector, expected, atol=1e-5, rtol=0)
    result = cfs("demo", "train", "clip-base", "--out", tmp_path / "b.pt", "--clip", clip_file)
    assert result.exit_code == 2 and "must end in .safetensors" in result.output


def test_identity_and_encoder_train_and_eval(cfs: Cfs, tmp_path: Path, fixtures_dir: Path) -> None:
    ident = tmp_path / "i.safetensors"
    result = cfs("demo", "train", "identity", "--out", ident, "--steps", "1", "--batch", "4", "--identities", "3",
                 "--variants", "2")
    assert result.exit_code == 0, result.output
    assert IdentityNet.from_file(ident).embedding_dim == 128
    result = cfs("demo", "eval", "identity", ident, "--n", "3", "--variants", "2", "--size", "64", "--json")
    assert result.exit_code == 0 and 0.0 <= json.loads(result.stdout)["auc"] <= 1.0, result.output
    gen = fixtures_dir / "stylegan2" / "ros_converted_tiny.pt"
    enc = tmp_path / "e.safetensors"
    result = cfs("demo", "train", "encoder", "--out", enc, "--generator", gen, "--steps", "1", "--batch", "2",
                 "--input-size", "32", "--widths", "8,8,16,16")
    assert result.exit_code == 0, result.output
    assert E4E.from_file(enc).n_latent == load_generator(gen).generator.n_latent
    result = cfs("demo", "eval", "encoder", enc, "--generator", gen, "--identity", ident, "--n", "2", "--json")
    assert result.exit_code == 0 and "identity_similarity" in json.loads(result.stdout), result.output


def test_generator_until_stops_early_and_resumes_to_the_same_end(cfs: Cfs, tmp_path: Path) -> None:
    common = ["--steps", "4", "--batch", "2", "--size", "32", "--style-dim", "32", "--n-mlp", "2", "--channels",
              "16,16,8,8", "--checkpoint-every", "10"]
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    assert cfs("demo", "train", "generator", "--out", a, *common, "--checkpoint-dir", tmp_path / "ca").exit_code == 0
    part = cfs("demo", "train", "generator", "--out", b, *common, "--until", "2", "--checkpoint-dir", tmp_path / "cb")
    assert part.exit_code == 0 and "steps=2" in part.output, part.output
    rest = cfs("demo", "train", "generator", "--out", b, *common, "--checkpoint-dir", tmp_path / "cb")
    assert rest.exit_code == 0 and "resumed_from=2" in rest.output, rest.output
    ga, gb = load_generator(a).generator.state_dict(), load_generator(b).generator.state_dict()
    assert all(torch.equal(ga[k], gb[k]) for k in ga)


def test_autoencoder_trains_generator_and_encoder(cfs: Cfs, tmp_path: Path) -> None:
    from cfs_core.training.autoencode import AutoencodeOptions, train_generator_and_encoder
    from cfs_core.training.generator import GeneratorOptions

    go = GeneratorOptions(size=32, style_dim=32, n_mlp=2, channels=(16, 16, 8, 8))
    opts = AutoencodeOptions(generator=go, ae_steps=2, ae_batch=2, map_pairs=16, map_steps=2, map_batch=4, input_size=32,
                             widths=(8, 8, 16, 16), checkpoint_dir=str(tmp_path / "ck"))
    g, e4e, report = train_generator_and_encoder(opts)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    w = e4e.invert(x)
    assert w.shape == (2, g.n_latent, 32) and torch.equal(w[:, 0], w[:, -1])  # one w per image
    assert g.latent_avg is not None and report["images_seen"] == 2 * 2 + 16
    assert -1.0 <= report["additive_r2"] <= 1.0
    again, _, _ = train_generator_and_encoder(opts)  # both stages resume from their finished checkpoints
    assert all(torch.equal(a, b) for a, b in zip(g.state_dict().values(), again.state_dict().values()))


def test_additive_features_name_the_same_faces_as_params_from_z() -> None:
    from cfs_core.training.autoencode import additive_features
    from cfs_core.training.generator import params_from_z
    from cfs_core.world import SPECS

    z = torch.randn(64, 32, generator=torch.Generator().manual_seed(0))
    x = additive_features(z)
    col = 1
    for name, spec in SPECS.items():
        if spec.choices:
            picked = x[:, col:col + len(spec.choices)].argmax(1)
            assert [spec.choices[int(i)] for i in picked] == [getattr(p, name) for p in params_from_z(z)], name
            col += len(spec.choices)
        else:
            col += 1
    assert col == x.shape[1] and torch.equal(x[:, 0], torch.ones(64))
