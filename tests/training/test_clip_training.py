"""The demo CLIP's trainer and evaluation (cfs_core.training.clip) on a tiny config."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from cfs_core.checkpoints import read_safetensors
from cfs_core.clip import ClipModel
from cfs_core.errors import InputError
from cfs_core.methods import ProgressEvent
from cfs_core.training.clip import (
    DEMO_CLIP_CONFIG,
    ClipTrainOptions,
    build_clip,
    contrastive_loss,
    counterfactual_captions,
    encode_renders,
    evaluate_clip,
    full_caption,
    group_loss,
    hard_negative,
    parse_focus,
    train_clip,
    visible_attributes,
    warm_start,
)
from cfs_core.training.data import ATTRIBUTE_CHOICES, ATTRIBUTES, COLOR_ATTRIBUTES, DataSpec, face_seed, make_batch
from cfs_core.world import FaceParams, sample_params

pytestmark = pytest.mark.usefixtures("one_thread")

TINY: dict[str, Any] = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 56, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
COLOR_WORDS = {v for a in COLOR_ATTRIBUTES for v in ATTRIBUTE_CHOICES[a]}


def _opts(tmp: Path, run: str, steps: int = 3, **kw: Any) -> ClipTrainOptions:
    base: dict[str, Any] = dict(batch=6, size=32, pool=12, warmup=0, lr=1e-3, config=copy.deepcopy(TINY),
                                cache_dir=str(tmp / "cache"), checkpoint_dir=str(tmp / run), checkpoint_every=10)
    return ClipTrainOptions(steps=steps, **{**base, **kw})


def _interrupt_at(step: int) -> Callable[[ProgressEvent], None]:
    def progress(event: ProgressEvent) -> None:
        if event.stage == "train" and event.step == step:
            raise KeyboardInterrupt

    return progress


# ---------------------------------------------------------------------------------- captions
def test_full_caption_names_every_visible_attribute() -> None:
    face = FaceParams(presentation="masculine", hair="bald", hair_color="red", facial_hair="beard", glasses="round",
                      eyebrows="bushy", expression="smile", earrings="hoop", eye_color="blue", cloth_color="green",
                      background="teal")
    assert full_caption(face, "photo") == ("a photo of a smiling bald man with round glasses, a red beard, blue eyes "
                                           "and bushy eyebrows, wearing hoop earrings and a green shirt on a teal "
                                           "background")
    assert full_caption(face, "sketch") == ("a sketch of a smiling bald man with round glasses, a beard and bushy "
                                            "eyebrows, wearing hoop earrings")
    woman = FaceParams(presentation="feminine", hair="long", hair_color="red", glasses="sunglasses", hat="cap",
                       hat_color="yellow", expression="open_mouth", eyebrows="arched")
    text = full_caption(woman, "clipart")
    assert text.startswith("a clipart of a surprised woman with long red hair, sunglasses")
    assert "eyes" not in text and "a yellow cap" in text and "arched eyebrows" in text  # eyes hidden
    with pytest.raises(InputError):
        full_caption(woman, "oil painting")


def test_sketch_captions_and_attributes_have_no_colour() -> None:
    for i in range(40):
        face = sample_params(face_seed("train", i))
        words = set(full_caption(face, "sketch").replace(",", "").split())
        assert not words & COLOR_WORDS
        assert not set(visible_attributes(face, "sketch")) & COLOR_ATTRIBUTES
        assert "eyebrows" in visible_attributes(face, "photo")


def test_counterfactual_captions_differ_from_the_truth() -> None:
    rng = random.Random(0)
    for i in range(30):
        face = sample_params(face_seed("train", i))
        for style in ("photo", "clipart", "sketch"):
            true = full_caption(face, style)
            assert hard_negative(face, style, rng) != true
            for name in visible_attributes(face, style):
                options = counterfactual_captions(face, style, name)
                assert set(options) == set(ATTRIBUTE_CHOICES[name]) and options[getattr(face, name)] == true
    bald = FaceParams(hair="bald", facial_hair="none")
    assert "hair_color" not in visible_attributes(bald, "photo")


def _changed(face: FaceParams, style: str, text: str) -> str:
    return next(a for a in visible_attributes(face, style) if text in counterfactual_captions(face, style, a).values())


def test_focus_weights_steer_which_attribute_a_hard_negative_changes() -> None:
    faces = [sample_params(face_seed("train", i)) for i in range(60)]
    rng, focused = random.Random(1), random.Random(1)
    uniform = [_changed(f, "photo", hard_negative(f, "photo", rng)) for f in faces for _ in range(5)]
    pushed = [_changed(f, "photo", hard_negative(f, "photo", focused, {"eyebrows": 20.0})) for f in faces for _ in range(5)]
    # eyebrows are always visible: ~1/11 of uniform picks, ~20/30 with weight 20
    assert uniform.count("eyebrows") < 0.2 * len(uniform) and pushed.count("eyebrows") > 0.5 * len(pushed)
    face = faces[0]
    others = [a for a in visible_attributes(face, "photo") if a != "eyebrows"]
    assert _changed(face, "photo", hard_negative(face, "photo", random.Random(2), exclude=others)) == "eyebrows"


def test_parse_focus_accepts_weights_and_refuses_bad_ones() -> None:
    assert parse_focus("eye_color=4, eyebrows=2.5,") == {"eye_color": 4.0, "eyebrows": 2.5}
    assert parse_focus("") == {}
    for bad in ("eye_colour=2", "eyebrows", "eyebrows=x", "eyebrows=0", "eyebrows=-1", "eyebrows=inf"):
        with pytest.raises(InputError, match="focus"):
            parse_focus(bad)
    with pytest.raises(InputError, match="focus"):
        ClipTrainOptions(focus=(("nose", 2.0),))
    with pytest.raises(InputError, match="negatives"):
        ClipTrainOptions(negatives=-1)


def test_captions_fit_the_context() -> None:
    from open_clip.tokenizer import SimpleTokenizer

    tok = SimpleTokenizer()
    longest = FaceParams(presentation="feminine", hair="long", hair_color="black", glasses="square",
                         facial_hair="goatee", hat="cap", earrings="stud", expression="frown", eyebrows="arched",
                         cloth_color="white")
    assert len(tok.encode(full_caption(longest, "clipart"))) + 2 <= DEMO_CLIP_CONFIG["text_cfg"]["context_length"]


# ---------------------------------------------------------------------------------- loss
def test_contrastive_loss_rewards_alignment_and_shares_twins() -> None:
    emb = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    scale = torch.tensor(np.log(100.0))
    eye = torch.eye(4, dtype=torch.bool)
    aligned = contrastive_loss(emb, emb, scale, eye)
    shuffled = contrastive_loss(emb, emb.roll(1, 0), scale, eye)
    assert float(aligned) < 0.1 < float(shuffled)
    negatives = torch.cat([emb, emb[:, [1, 0, 3, 2, 5, 4, 7, 6]]])  # [2B, D]
    with_negatives = contrastive_loss(emb, negatives, scale, torch.cat([eye, torch.zeros(4, 4, dtype=torch.bool)], 1))
    assert torch.isfinite(with_negatives) and float(with_negatives) >= float(aligned)
    twins = torch.cat([emb[:1], emb[:1]])  # two images, one text each, the same text
    assert float(contrastive_loss(twins, twins, scale, torch.ones(2, 2, dtype=torch.bool))) == pytest.approx(
        np.log(2), abs=1e-4)  # the best possible: soft targets over two identical columns, both ways


# ---------------------------------------------------------------------------------- training
def test_training_runs_resumes_bit_identically_and_freezes(tmp_path: Path) -> None:
    whole, report = train_clip(_opts(tmp_path, "a"))
    assert report["steps"] == 3 and report["images_seen"] == 18 and np.isfinite(report["final_loss"])
    assert not whole.model.training and not any(p.requires_grad for p in whole.model.parameters())
    assert whole.generated_mode == "normalized" and whole.image_size == (32, 32)
    with pytest.raises(KeyboardInterrupt):
        train_clip(_opts(tmp_path, "b"), _interrupt_at(1))
    resumed, rep_b = train_clip(_opts(tmp_path, "b"))
    assert rep_b["resumed_from"] == 1
    for (k, v), w in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(v, w), k
    losses = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["losses"]
    assert len(losses) == 3 and bool(torch.isfinite(losses).all())
    with pytest.raises(InputError):  # other settings, same folder
        train_clip(_opts(tmp_path, "b", lr=3e-3))


def test_a_clip_grows_to_a_larger_input_without_changing_what_it_computes(tmp_path: Path) -> None:
    small = build_clip(TINY, seed=2)
    small.save(tmp_path / "small.safetensors")
    config = copy.deepcopy(TINY)
    config["vision_cfg"].update(image_size=64, patch_size=32)  # same 2 x 2 patch grid, twice the side
    big = build_clip(config, seed=5)
    warm_start(big.model, str(tmp_path / "small.safetensors"))
    images = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        want = small.model.encode_image(torch.nn.functional.avg_pool2d(images, 2))
        torch.testing.assert_close(big.model.encode_image(images), want, atol=1e-5, rtol=1e-5)
    config["vision_cfg"]["layers"] = 2
    with pytest.raises(InputError, match="not the same CLIP architecture"):
        warm_start(build_clip(config).model, str(tmp_path / "small.safetensors"))
    with pytest.raises(InputError, match="must be the CLIP's image side"):
        _opts(tmp_path, "c", size=48)
    trained, report = train_clip(_opts(tmp_path, "d", steps=1, init=str(tmp_path / "small.safetensors")))
    assert report["options"]["init"].endswith("small.safetensors") and report["steps"] == 1


def test_batches_are_pure_functions_of_the_step(tmp_path: Path) -> None:
    from cfs_core.training.clip import ClipBatchSource
    from cfs_core.training.data import Pool, step_indices

    clip = build_clip(TINY)
    pool = Pool.build(DataSpec(size=32, styles=("photo", "clipart", "sketch"), weights=(1, 1, 1)), 12)
    a, b = ClipBatchSource(pool, 6, 0, clip.tokenizer)(2), ClipBatchSource(pool, 6, 0, clip.tokenizer)(2)
    assert a.texts == b.texts and torch.equal(a.tokens, b.tokens) and torch.equal(a.images, b.images)
    assert a.tokens.shape == (12, 56) and a.positives.shape == (6, 12) and bool(a.positives[:, :6].diagonal().all())
    assert not bool(a.positives[:, 6:].any())  # a counterfactual never equals a true caption of its image
    assert ClipBatchSource(pool, 6, 0, clip.tokenizer)(3).texts != a.texts
    assert ClipBatchSource(pool, 6, 0, clip.tokenizer, negatives=False)(2).tokens.shape == (6, 56)
    three = ClipBatchSource(pool, 6, 0, clip.tokenizer, negatives=3, focus={"eye_color": 3.0})(2)
    assert three.tokens.shape == (24, 56) and three.positives.shape == (6, 24) and not bool(three.positives[:, 6:].any())
    source = ClipBatchSource(pool, 6, 0, clip.tokenizer)
    faces = [source.params(i) for i in step_indices(2, 6, 0, 12).tolist()]
    for i, face in enumerate(faces):  # an image's three negatives change three different attributes
        changed = {_changed(face, three.styles[i], t) for t in three.texts[6 + 3 * i: 9 + 3 * i]}
        assert len(changed) == min(3, len(visible_attributes(face, three.styles[i])))


def test_matched_negatives_differ_from_a_phrased_caption_only_in_the_changed_words() -> None:
    import difflib

    from cfs_core.training.clip import ClipBatchSource
    from cfs_core.training.data import Pool

    clip = build_clip(TINY)
    pool = Pool.build(DataSpec(size=32, styles=("photo", "clipart", "sketch"), weights=(1, 1, 1)), 12)

    def close_fraction(matched: bool) -> float:
        source = ClipBatchSource(pool, 6, 0, clip.tokenizer, full_prob=0.0, negatives=2, matched=matched)
        close = []
        for step in range(10):
            batch = source(step)
            assert not bool(batch.positives[:, 6:].any())
            for i in range(6):
                for negative in batch.texts[6 + 2 * i: 8 + 2 * i]:
                    edits = [w for w in difflib.ndiff(batch.texts[i].split(), negative.split()) if w[0] in "+-"]
                    close.append(len(edits) <= 3)
        return float(np.mean(close))

    # a phrased positive against full-caption counterfactuals: the wording differs almost always
    assert close_fraction(False) < 0.1 and close_fraction(True) > 0.75


def test_ranking_groups_hold_one_attributes_captions_and_their_loss_ranks_within_a_group() -> None:
    from cfs_core.training.clip import ClipBatchSource
    from cfs_core.training.data import Pool, step_indices

    clip = build_clip(TINY)
    pool = Pool.build(DataSpec(size=32, styles=("photo", "clipart", "sketch"), weights=(1, 1, 1)), 12)
    plain = ClipBatchSource(pool, 6, 0, clip.tokenizer, focus={"eye_color": 5.0})(2)
    batch = ClipBatchSource(pool, 6, 0, clip.tokenizer, groups=4, focus={"eye_color": 5.0})(2)
    assert batch.texts == plain.texts  # the groups draw apart: the other texts do not change
    assert batch.group_images is not None and batch.group_tokens is not None
    assert batch.group_of is not None and batch.group_truth is not None
    assert batch.group_images.tolist() == [0, 1, 2, 3] and len(batch.group_of) == len(batch.group_tokens)
    source = ClipBatchSource(pool, 6, 0, clip.tokenizer)
    for g, i in enumerate(batch.group_images.tolist()):
        face = source.params(step_indices(2, 6, 0, 12).tolist()[i])
        members = (batch.group_of == g).nonzero().flatten().tolist()
        assert batch.group_truth[g].item() in members and len(members) >= 2
        truth = clip.tokenizer([full_caption(face, batch.styles[i])])[0]
        assert torch.equal(batch.group_tokens[batch.group_truth[g]], truth)
    # the loss: a softmax over the group's own texts only
    image = torch.nn.functional.normalize(torch.randn(2, 8), dim=-1)
    texts = torch.nn.functional.normalize(torch.randn(5, 8), dim=-1)
    group_of, truth, scale = torch.tensor([0, 0, 1, 1, 1]), torch.tensor([1, 3]), torch.tensor(0.0)
    logits = image @ texts.T
    expected = (-(logits[0, :2].log_softmax(0)[1]) - logits[1, 2:].log_softmax(0)[1]) / 2
    assert torch.allclose(group_loss(image, texts, scale, group_of, truth), expected, atol=1e-6)
    texts[3] = image[1]  # the true text of group 1 aligned with its image: lower loss
    assert group_loss(image, texts, scale + 3, group_of, truth) < group_loss(image, texts.flip(0), scale + 3, group_of, truth)


# ---------------------------------------------------------------------------------- evaluation
def test_evaluation_reports_fractions() -> None:
    clip = build_clip(TINY)
    spec = DataSpec(size=32, styles=("clipart",), split="test")
    batch = make_batch(spec, range(3))
    uint8 = [((im.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8) for im in batch.images]
    torch.testing.assert_close(encode_renders(clip, batch.images), clip.encode_images(uint8), atol=1e-4, rtol=0)
    torch.testing.assert_close(encode_renders(clip, batch.images), clip.encode_generated(batch.images))
    out = evaluate_clip(clip, n=5, size=32)
    assert set(out["per_style"]) == {"photo", "clipart", "sketch"} and out["n"] == 5
    for style, figures in out["per_style"].items():
        assert set(figures["attribute_accuracy"]) <= set(ATTRIBUTES) and "eyebrows" in figures["attribute_accuracy"]
        if style == "sketch":
            assert not set(figures["attribute_accuracy"]) & COLOR_ATTRIBUTES
        values = [*figures["attribute_accuracy"].values(), figures["mean_attribute_accuracy"],
                  figures["retrieval_top1"], figures["retrieval_top5"]]
        assert all(0.0 <= v <= 1.0 for v in values)
        assert figures["retrieval_top1"] <= figures["retrieval_top5"]
    assert 0.0 <= out["mean_attribute_accuracy"] <= 1.0


def test_half_precision_file_round_trip(tmp_path: Path) -> None:
    clip = build_clip(TINY, seed=3)
    full = clip.save(tmp_path / "full.safetensors")
    half = clip.save(tmp_path / "half.safetensors", {"training": "{}", "format_name": "x"}, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    meta = read_safetensors(half)[1]
    assert meta["training"] == "{}" and meta["format_name"] == "cfs.clip"  # cfs' own keys win
    loaded = ClipModel.from_file(half)
    assert loaded.generated_mode == "normalized" and all(p.dtype == torch.float32 for p in loaded.model.parameters())
    texts = ["a photo of a smiling man", "a sketch of a woman with long hair"]
    torch.testing.assert_close(loaded.encode_text(texts), clip.encode_text(texts), atol=1e-2, rtol=0)
    images = make_batch(DataSpec(size=32), range(2)).images
    torch.testing.assert_close(loaded.encode_generated(images), clip.encode_generated(images), atol=1e-2, rtol=0)
    exact = ClipModel.from_file(full)
    assert torch.equal(exact.encode_text(texts), clip.encode_text(texts))
