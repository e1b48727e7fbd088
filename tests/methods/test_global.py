"""StyleCLIP global directions (``global``): the conformance kit plus behaviour.

Behaviour is checked with ``FakeClip`` on the 16 px test generator (spec styleclip_stylegan2.md
§7): the precomputation gives unit rows and is cached; the S statistics equal a direct
computation over the reference's ``RandomState(seed)`` W samples; a line-by-line port of
``SingleChannel.py``/``GetFs`` reproduces the corrected and the ``faithful`` rows; an edit moves
the image's FakeClip embedding along Δt; α = 0 is the source; β rules; StyleCLIP's file formats
load (and a pickle with any other global is refused without running it).
"""

from __future__ import annotations

import atexit
import copy
import os
import pickle
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import cfs_plugins.global_directions as plugin
from cfs_core.artifacts import model_digest
from cfs_core.errors import InputError, ModelLoadError, UnsafeCheckpointError
from cfs_core.guidance import Guidance, text_digest
from cfs_core.methods import EditContext, EditRequest, EditResult
from cfs_core.stylegan2 import Generator, GeneratorConfig
from cfs_core.testing import EditingMethodTests, fake_context, source_latents
from cfs_plugins.global_directions.method import GlobalDirections, GlobalOptions, text_direction
from cfs_plugins.global_directions.precompute import non_torgb_layers, relevance_layers, \
    valid_row_counts
from cfs_plugins.global_directions.styleclip_files import load_numpy_pickle

torch.set_num_threads(1)

CACHE = Path(tempfile.mkdtemp(prefix="cfs-test-global-"))  # shared: each precomputation runs once
atexit.register(shutil.rmtree, CACHE, ignore_errors=True)
FAST: dict[str, Any] = {"n_stats": 1000, "n_images": 3}  # 16 px: relevance for conv1 only (res <= 4)
FULL: dict[str, Any] = {**FAST, "all_layers": True}  # all 104 non-ToRGB channels of the tiny generator
TEXT = "a smiling face"


class TestGlobalDirections(EditingMethodTests):
    plugin = plugin
    method_cls = GlobalDirections

    def get_dummy_context(self) -> EditContext:
        return fake_context(cache_dir=CACHE)

    def get_dummy_request(self, ctx: EditContext) -> EditRequest:
        return self.request(ctx, kind="text", source=TEXT, options=FAST, batch=2)


# ---------------------------------------------------------------------------------------------
# helpers


def _ctx(cache: Path | None = CACHE) -> EditContext:
    return fake_context(cache_dir=cache)


def _request(ctx: EditContext, text: str = TEXT, batch: int = 2, **options: Any) -> EditRequest:
    guidance = Guidance("text", text, text=text, digest=text_digest(text))
    return EditRequest(source_latents(ctx.generator, batch), guidance, GlobalDirections.parse_options(options))


def _edit(ctx: EditContext, text: str = TEXT, **options: Any) -> tuple[EditRequest, EditResult]:
    request = _request(ctx, text, **{**FULL, **options})
    return request, GlobalDirections().edit(ctx, request)


def _artefacts(ctx: EditContext, **options: Any) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    opts: GlobalOptions = GlobalDirections.parse_options({**FULL, **options})  # type: ignore[assignment]
    method = GlobalDirections()
    mean, std, _ = method.stats(ctx, opts)
    fs3, _ = method.relevance(ctx, opts, ctx.resources.get("clip"), mean, std)
    return mean, std, fs3


def _count_synthesis(ctx: EditContext) -> list[int]:
    calls = [0]
    original = ctx.generator.synthesis_from_styles

    def counting(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls[0] += 1
        return original(*args, **kwargs)

    ctx.generator.synthesis_from_styles = counting  # type: ignore[method-assign]
    return calls


def _reference_row(ctx: EditContext, mean: list[torch.Tensor], std: list[torch.Tensor], layer: int, channel: int,
                   faithful: bool, n_images: int = 3, sigma: float = 5.0) -> torch.Tensor:
    """``SingleChannel.py`` + ``GetFs`` for one channel, literally (one image at a time)."""
    gen, clip = ctx.generator, ctx.resources.get("clip")
    z = torch.from_numpy(np.random.RandomState(5).randn(n_images, gen.style_dim)).float()
    w = gen.truncate(gen.mapping(z), 0.7, gen.truncation_center())
    dlatents = [s.clone() for s in gen.styles(w)]
    if faithful:  # the shallow-copy quirk: every channel processed before sits at its mean
        for other in non_torgb_layers(gen):
            if other.index < layer:
                dlatents[other.index][:] = mean[other.index]
            elif other.index == layer:
                dlatents[layer][:, :channel] = mean[layer][:channel]
    feats = np.zeros((n_images, 2, clip.embed_dim), dtype=np.float32)
    for i in range(n_images):
        for k, a in enumerate((-sigma, sigma)):
            s = [d[i:i + 1].clone() for d in dlatents]
            s[layer][0, channel] = mean[layer][channel] + a * std[layer][channel]
            image = gen.synthesis_from_styles(s, noise="const")
            pixels = np.clip(image[0].permute(1, 2, 0).numpy() * 127.5 + 127.5 + 0.5, 0, 255).astype("uint8")
            feats[i, k] = clip.encode_images([pixels])[0].numpy()
    f = feats / np.linalg.norm(feats, axis=-1, keepdims=True)
    d = f[:, 1] - f[:, 0]
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    row = d.mean(0)
    return torch.from_numpy(row / np.linalg.norm(row))


# ---------------------------------------------------------------------------------------------
# precomputation


def test_precompute_gives_unit_rows_and_is_cached(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    request = _request(ctx, "dummy", **FULL)
    calls = _count_synthesis(ctx)
    start = time.perf_counter()
    facts = GlobalDirections().train(ctx, request)
    first = time.perf_counter() - start
    assert facts["stats"]["source"] == "computed" and facts["fs3"]["source"] == "computed"
    assert facts["fs3"]["rows"] == 104 and facts["fs3"]["synthesized_images"] == 104 * 2 * 3
    assert calls[0] == 21  # 5 channels x 2 x 3 images per batch of 32: ceil(104 / 5) syntheses
    fs3 = _artefacts(ctx)[2]
    assert fs3.shape == (104, 16)
    assert torch.allclose(fs3.norm(dim=1), torch.ones(104), atol=1e-5)

    again = _ctx(tmp_path)  # a fresh process: same generator and CLIP, same cache directory
    request = _request(again, "dummy", **{**FULL, "batch_size": 7})  # batch_size is not in the key
    calls = _count_synthesis(again)
    start = time.perf_counter()
    facts = GlobalDirections().train(again, request)
    second = time.perf_counter() - start
    assert facts["stats"]["source"] == "cache" and facts["fs3"]["source"] == "cache"
    assert calls[0] == 0 and again.resources.get("clip").calls["images"] == 0  # the cache did the work
    print(f"tiny precompute (104 channels x 2 x 3 images): {first:.2f} s, cached: {second:.3f} s")

    facts = GlobalDirections().train(again, _request(again, "dummy", **{**FULL, "sigma": 3.0}))
    assert facts["stats"]["source"] == "cache" and facts["fs3"]["source"] == "computed"  # sigma is in the key


def test_progress_is_reported_per_channel_batch(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    events: list[Any] = []
    ctx.progress = events.append
    GlobalDirections().train(ctx, _request(ctx, "dummy", **FAST))
    relevance = [e for e in events if e.stage == "relevance"]
    assert [e.step for e in relevance] == [5, 10, 15, 20, 25, 30, 32] and relevance[-1].total == 32
    assert [e.step for e in events if e.stage == "stats"] == [1000]


def test_stats_equal_a_direct_computation() -> None:
    ctx = _ctx(None)  # no cache
    options: GlobalOptions = GlobalDirections.parse_options({"n_stats": 2500})  # type: ignore[assignment]
    mean, std, info = GlobalDirections().stats(ctx, options)
    assert info["source"] == "computed" and info["path"] is None
    gen = ctx.generator
    z = torch.from_numpy(np.random.RandomState(5).randn(2500, gen.style_dim)).float()  # one draw: same stream
    styles = gen.styles(gen.truncate(gen.mapping(z), 0.7, gen.truncation_center()))
    assert len(mean) == len(std) == len(gen.stylespace) == 8
    for m, s, ref in zip(mean, std, styles):
        assert torch.allclose(m, ref.mean(0), atol=1e-5)
        assert torch.allclose(s, ref.std(0, unbiased=False), atol=1e-5)


@pytest.mark.parametrize("faithful", [False, True])
def test_relevance_matches_the_reference_loop(faithful: bool) -> None:
    ctx = _ctx()
    mean, std, fs3 = _artefacts(ctx, faithful=faithful)
    # rows 0 (conv1 channel 0), 40 (convs.0 channel 8) and 100 (convs.3 channel 4)
    for row, (layer, channel) in {0: (0, 0), 40: (2, 8), 100: (6, 4)}.items():
        assert torch.allclose(fs3[row], _reference_row(ctx, mean, std, layer, channel, faithful), atol=1e-5)


def test_faithful_rows_differ_after_the_first() -> None:
    ctx = _ctx()
    corrected = _artefacts(ctx)[2]
    faithful = _artefacts(ctx, faithful=True)[2]
    assert torch.equal(corrected[0], faithful[0])  # nothing processed before the first channel
    assert (corrected[1:] - faithful[1:]).abs().amax(dim=1).gt(1e-4).float().mean() > 0.5


def test_layer_rule_generalises_the_reference() -> None:
    big = Generator(GeneratorConfig.from_multiplier(1024, n_mlp=1))  # the real channel table (~0.5 s on CPU)
    mid = Generator(GeneratorConfig(size=256, style_dim=16, n_mlp=1, channels={2**k: 8 for k in range(2, 9)}))
    assert len(non_torgb_layers(big)) == 17 and valid_row_counts(big)[-1] == 6048
    default = relevance_layers(big)
    assert [layer.index for layer in default] == [0, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15]  # res <= 128
    assert sum(layer.channels for layer in default) == 5376 and 5376 in valid_row_counts(big)
    assert sum(layer.channels for layer in relevance_layers(big, all_layers=True)) == 6048
    assert len(relevance_layers(big, max_resolution=256)) == 13
    assert max(layer.resolution for layer in relevance_layers(mid)) == 32  # 256 / 8
    assert [layer.name for layer in relevance_layers(_ctx().generator)] == ["conv1"]  # 16 px: floor of 4 px


# ---------------------------------------------------------------------------------------------
# edits


def test_edit_moves_the_embedding_along_the_text_direction() -> None:
    ctx = _ctx()
    clip = ctx.resources.get("clip")
    request, _ = _edit(ctx, alpha=0.0)
    dt = text_direction(clip, TEXT, "face")
    source = clip.encode_generated(ctx.generator.synthesis(request.latents)) @ dt
    previous = source
    for alpha in (1.0, 2.0, 4.1):
        result = _edit(ctx, alpha=alpha)[1]
        cosine = clip.encode_generated(result.images) @ dt
        assert (cosine > previous).all(), (alpha, cosine, previous)
        previous = cosine
    reverse = clip.encode_generated(_edit(ctx, alpha=-4.1)[1].images) @ dt
    assert (reverse < source).all()


def test_alpha_zero_returns_the_source_exactly() -> None:
    ctx = _ctx()
    request, result = _edit(ctx, alpha=0.0)
    gen = ctx.generator
    assert torch.equal(result.images, gen.synthesis(request.latents))
    assert all(torch.equal(a, b) for a, b in zip(result.latents, gen.styles(request.latents)))


def test_edit_moves_only_surviving_channels_by_alpha_std() -> None:
    ctx = _ctx()
    request, result = _edit(ctx, alpha=2.0, beta=0.3)
    gen = ctx.generator
    _, std, fs3 = _artefacts(ctx)
    r = fs3 @ text_direction(ctx.resources.get("clip"), TEXT, "face")
    delta = torch.cat([e - s for e, s in zip(result.latents, gen.styles(request.latents))], dim=1)
    torgb = torch.cat([torch.full((c,), layer.is_torgb) for c, layer in zip(gen.stylespace_dims, gen.stylespace)])
    assert (delta[:, torgb] == 0).all()  # ToRGB layers never move
    moved = delta[:, ~torgb]
    expected = torch.where(r.abs() >= 0.3, r, 0) / r.abs().max() * 2.0 * torch.cat([std[l.index] for l in non_torgb_layers(gen)])
    assert torch.allclose(moved, expected.expand_as(moved), atol=1e-5)
    assert result.info["num_channels"] == int((r.abs() >= 0.3).sum()) == int((moved[0] != 0).sum())


def test_high_beta_is_a_one_line_error() -> None:
    ctx = _ctx()
    with pytest.raises(InputError, match=r"no channel passes β=0\.99 .*; lower beta") as info:
        _edit(ctx, beta=0.99)
    assert "\n" not in str(info.value)


def test_auto_beta_follows_the_gui_rule() -> None:
    ctx = _ctx()
    _, _, fs3 = _artefacts(ctx)
    clip = ctx.resources.get("clip")
    for text in (TEXT, "blonde hair", "an old man"):
        r = (fs3 @ text_direction(clip, text, "face")).abs().numpy()
        for min_channels in (20, 40, 60):
            betas = np.arange(0.1, 0.3, 0.01)
            counts = np.array([(r >= b).sum() for b in betas])
            expected = betas[counts > min_channels][-1] if (counts > min_channels).any() else 0.1
            info = _edit(ctx, text, beta="auto", auto_beta_min_channels=min_channels)[1].info
            assert info["beta"] == pytest.approx(float(expected)) and info["beta_rule"] == "auto"
            assert info["num_channels"] == int((r >= info["beta"]).sum())
    fallback = _edit(ctx, beta="auto", auto_beta_min_channels=10_000, auto_beta_fallback=0.05)[1].info
    assert fallback["beta"] == 0.05


def test_options() -> None:
    assert GlobalDirections.parse_options({"beta": "auto"}).beta == "auto"  # type: ignore[attr-defined]
    assert GlobalDirections.parse_options({"beta": "0.2", "alpha": "-3"}).alpha == -3.0  # type: ignore[attr-defined]
    for bad in ({"beta": "1.5"}, {"beta": "often"}, {"auto_beta_stop": "0.05"}, {"clip_input": "raw"}):
        with pytest.raises(InputError):
            GlobalDirections.parse_options(bad)
    assert GlobalDirections.strength_option == "alpha" and GlobalDirections.describe()["trainable"]


def test_neutral_text_changes_the_direction() -> None:
    ctx = _ctx()
    a = _edit(ctx, neutral="face")[1]
    b = _edit(ctx, neutral="a face with hair")[1]
    assert not torch.equal(a.images, b.images) and b.info["neutral"] == "a face with hair"
    with pytest.raises(InputError, match="same CLIP embedding"):
        _edit(ctx, "face", neutral="face")


# ---------------------------------------------------------------------------------------------
# StyleCLIP's files


def _write_styleclip(folder: Path, fs3: torch.Tensor, mean: list[torch.Tensor], std: list[torch.Tensor],
                     protocol: int = 3) -> tuple[Path, Path]:
    np.save(folder / "fs3.npy", fs3.numpy())
    with open(folder / "S_mean_std", "wb") as handle:
        pickle.dump([[m.numpy() for m in mean], [s.numpy() for s in std]], handle, protocol=protocol)
    return folder / "fs3.npy", folder / "S_mean_std"


@pytest.mark.parametrize("protocol", [2, 3, 5])
def test_styleclip_files_give_the_same_edit_as_the_cache(tmp_path: Path, protocol: int) -> None:
    ctx = _ctx()
    mean, std, fs3 = _artefacts(ctx)
    fs3_path, stats_path = _write_styleclip(tmp_path, fs3, mean, std, protocol)
    cached = _edit(ctx)[1]
    loaded = _edit(ctx, fs3_path=str(fs3_path), stats_path=str(stats_path))[1]
    assert loaded.info["fs3"]["source"] == "file" and loaded.info["stats"]["source"] == "file"
    assert torch.equal(cached.images, loaded.images)


def test_numpy1_pickles_load(tmp_path: Path) -> None:
    data = pickle.dumps([[np.arange(3, dtype=np.float32)], [np.ones(2)]], protocol=2)
    old = data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")  # what numpy 1.x writes
    assert old != data
    (tmp_path / "old").write_bytes(old)
    means, stds = load_numpy_pickle(tmp_path / "old")
    assert means[0].tolist() == [0.0, 1.0, 2.0] and stds[0].dtype == np.float64


def test_fs3_prefix_rows_leave_later_layers_alone(tmp_path: Path) -> None:
    ctx = _ctx()
    mean, std, fs3 = _artefacts(ctx)
    np.save(tmp_path / "fs3.npy", fs3[:64].numpy())  # conv1 + convs.0 only
    request, result = _edit(ctx, fs3_path=str(tmp_path / "fs3.npy"), beta=0.05)
    moved = {layer.name for layer, e, s in zip(ctx.generator.stylespace, result.latents, ctx.generator.styles(request.latents))
             if not torch.equal(e, s)}
    assert moved and moved <= {"conv1", "convs.0"}
    np.save(tmp_path / "bad.npy", fs3[:50].numpy())
    with pytest.raises(ModelLoadError, match=r"50 rows match no prefix .*valid row counts: 32, 64, 80, 96, 104"):
        _edit(ctx, fs3_path=str(tmp_path / "bad.npy"))
    np.save(tmp_path / "narrow.npy", fs3[:, :8].numpy())
    with pytest.raises(InputError, match="8-D rows but this CLIP embeds in 16 dims"):
        _edit(ctx, fs3_path=str(tmp_path / "narrow.npy"))


def test_stats_file_must_fit_the_generator(tmp_path: Path) -> None:
    ctx = _ctx()
    mean, std, fs3 = _artefacts(ctx)
    _, stats_path = _write_styleclip(tmp_path, fs3, mean[:-1], std[:-1])
    with pytest.raises(ModelLoadError, match="7 means and 7 stds; this generator has 8 StyleSpace layers"):
        _edit(ctx, stats_path=str(stats_path))
    with open(stats_path, "wb") as handle:
        pickle.dump({"mean": 1}, handle)
    with pytest.raises(ModelLoadError, match=r"\[means, stds\]"):
        _edit(ctx, stats_path=str(stats_path))


class _Payload:
    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.func, self.args


@pytest.mark.parametrize("func", [os.system, eval])
def test_pickles_with_other_globals_are_refused_and_nothing_runs(tmp_path: Path, func: Any) -> None:
    marker = tmp_path / "ran"
    code = f"touch {marker}" if func is os.system else f"open({str(marker)!r}, 'w')"
    path = tmp_path / "S_mean_std"
    with open(path, "wb") as handle:
        pickle.dump([[np.zeros(3, np.float32), _Payload(func, code)], []], handle)
    ctx = _ctx()
    with pytest.raises(UnsafeCheckpointError, match="refused to unpickle it .*is not allowed") as info:
        _edit(ctx, stats_path=str(path))
    assert "\n" not in str(info.value)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# the real CLIP adapter


def test_precompute_with_the_clip_adapter(tmp_path: Path) -> None:
    from cfs_core.clip import ClipModel

    config = {"embed_dim": 16,
              "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
              "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    torch.manual_seed(0)
    clip = ClipModel.from_open_clip(copy.deepcopy(config))
    torch.manual_seed(0)
    twin = ClipModel.from_open_clip(copy.deepcopy(config))
    assert model_digest(clip) == model_digest(twin)
    ctx = _ctx(tmp_path)
    ctx.resources.provide_value("clip", clip)
    request = _request(ctx, **{**FAST, "n_images": 1})
    facts = GlobalDirections().train(ctx, request)
    assert facts["fs3"]["rows"] == 32
    result = GlobalDirections().edit(ctx, request)
    assert result.info["fs3"]["source"] == "cache" and torch.isfinite(result.images).all()
