"""The demo-pack training pipeline: data, loop, trainers, metrics, files and CLI (tiny settings)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import Result

from cfs_core.errors import InputError
from cfs_core.methods import ProgressEvent
from cfs_core.nets.evaluator import Evaluator
from cfs_core.nets.parsing import Parser
from cfs_core.training.data import (
    ATTRIBUTES,
    IGNORE,
    DataSpec,
    Pool,
    attribute_targets,
    decode_attributes,
    face_seed,
    make_batch,
    step_indices,
)
from cfs_core.training.loops import (
    TrainOptions,
    attribute_accuracy,
    evaluate_evaluator,
    evaluate_parser,
    iou_counts,
    mean_iou,
    train_evaluator,
    train_parser,
)
from cfs_core.world import sample_params

Cfs = Callable[..., Result]
MIX = ("photo", "clipart", "sketch")
TINY = dict(batch=4, size=32, widths=(4, 8), feature_scale=16, lr=3e-3, checkpoint_every=2)


# ---------------------------------------------------------------------------------- data
def test_batches_are_deterministic_and_shaped() -> None:
    spec = DataSpec(size=32, styles=MIX)
    a, b = make_batch(spec, range(6)), make_batch(spec, range(6))
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels) and torch.equal(a.targets, b.targets)
    assert a.captions == b.captions and a.styles == b.styles
    assert a.images.shape == (6, 3, 32, 32) and a.labels.shape == (6, 32, 32)
    assert a.targets.shape == (6, len(ATTRIBUTES)) and a.identity.shape == (6, 11)
    assert -1.0 <= float(a.images.min()) and float(a.images.max()) <= 1.0
    other = make_batch(DataSpec(size=32, styles=MIX, seed=1), range(6))
    assert not torch.equal(a.images, other.images)


def test_splits_are_disjoint() -> None:
    seeds = {split: {face_seed(split, i) for i in range(2000)} for split in ("train", "val", "test")}
    assert not seeds["train"] & seeds["test"] and not seeds["train"] & seeds["val"] and not seeds["val"] & seeds["test"]
    assert face_seed("train", 5, seed=1) not in seeds["train"]
    train = make_batch(DataSpec(size=32, split="train"), range(3))
    test = make_batch(DataSpec(size=32, split="test"), range(3))
    assert not torch.equal(train.images, test.images)


def test_pool_and_cache_match_the_stream(tmp_path: Path) -> None:
    spec = DataSpec(size=32, styles=MIX)
    pool = Pool.build(spec, 5, cache_dir=tmp_path)
    cached = Pool.build(spec, 5, cache_dir=tmp_path)  # read back from the shards
    stream = make_batch(spec, [4, 0, 2])
    for p in (pool, cached):
        b = p.batch([4, 0, 2])
        assert torch.equal(b.images, stream.images) and torch.equal(b.targets, stream.targets)
        assert b.captions == stream.captions
    idx = np.concatenate([step_indices(s, 2, 0, 5) for s in range(5)])
    assert sorted(idx[:5].tolist()) == [0, 1, 2, 3, 4]  # one epoch is a permutation


def test_attribute_targets_mark_unseen_attributes() -> None:
    face = sample_params(0, hair="short", hat="cap", glasses="sunglasses", facial_hair="none")
    t = decode_attributes(attribute_targets(face, "photo"))
    assert t["hair"] is None and t["hair_color"] is None and t["eye_color"] is None and t["hat"] == "cap"
    sketch = decode_attributes(attribute_targets(sample_params(1, hat="none"), "sketch"))
    assert sketch["background"] is None and sketch["hat_color"] is None and sketch["glasses"] is not None


def test_bad_specs_are_input_errors() -> None:
    with pytest.raises(InputError):
        DataSpec(styles=("oil",))
    with pytest.raises(InputError):
        DataSpec(split="holdout")
    with pytest.raises(InputError):
        DataSpec(size=8)


# ---------------------------------------------------------------------------------- training
def _interrupt_at(step: int) -> Callable[[ProgressEvent], None]:
    def progress(event: ProgressEvent) -> None:
        if event.stage == "train" and event.step == step:
            raise KeyboardInterrupt

    return progress


def _opts(tmp: Path | None, steps: int, **kw: object) -> TrainOptions:
    return TrainOptions(steps=steps, checkpoint_dir=str(tmp) if tmp else None, **{**TINY, **kw})  # type: ignore[arg-type]


def test_tiny_evaluator_training_lowers_the_loss(tmp_path: Path) -> None:
    _, report = train_evaluator(_opts(tmp_path, 12, pool=8, styles=("photo",), weights=()))
    assert report.steps == 12 and report.images_seen == 48
    losses = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["losses"].tolist()
    assert len(losses) == 12 and np.mean(losses[-3:]) < np.mean(losses[:3])


def test_resume_is_bit_identical_and_lowers_the_loss(tmp_path: Path) -> None:
    whole, rep = train_parser(_opts(tmp_path / "a", 6, pool=8))
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C after step 3 leaves a checkpoint at step 3
        train_parser(_opts(tmp_path / "b", 6, pool=8), _interrupt_at(3))
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["step"] == 3
    resumed, rep_b = train_parser(_opts(tmp_path / "b", 6, pool=8))
    assert rep_b.resumed_from == 3 and rep_b.steps == 6
    for (k, v), w in zip(whole.net.state_dict().items(), resumed.net.state_dict().values()):
        assert torch.equal(v, w), k
    state = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    losses = state["losses"].tolist()
    assert len(losses) == 6 and losses[-1] < losses[0]
    with pytest.raises(InputError):  # other settings, same folder
        train_parser(_opts(tmp_path / "b", 6, pool=8, lr=1e-2))


def test_evaluator_resume_and_files(tmp_path: Path) -> None:
    whole, _ = train_evaluator(_opts(tmp_path / "a", 4, pool=8))
    with pytest.raises(KeyboardInterrupt):
        train_evaluator(_opts(tmp_path / "b", 4, pool=8, checkpoint_every=10), _interrupt_at(1))
    resumed, _ = train_evaluator(_opts(tmp_path / "b", 4, pool=8))
    for v, w in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(v, w)
    path = whole.save(tmp_path / "ev.safetensors")
    loaded = Evaluator.from_file(path)
    images = make_batch(DataSpec(size=32), range(3)).images
    assert loaded.predict(images) == whole.predict(images)
    values = loaded.predict(images)
    assert set(values) == set(ATTRIBUTES) and all(len(v) == 3 for v in values.values())
    half = Evaluator.from_file(whole.save(tmp_path / "half.safetensors", half=True))
    assert half.config == whole.config
    figures = evaluate_evaluator(loaded, n=4, size=64, batch=4)
    assert set(figures["accuracy"]) <= set(ATTRIBUTES) and 0 <= figures["min_accuracy"] <= 1


def test_saved_parser_loads_as_the_parser_resource(tmp_path: Path) -> None:
    parser, _ = train_parser(_opts(None, 2, pool=4))
    path = parser.save(tmp_path / "parser.safetensors")
    loaded = Parser.from_file(path)
    assert loaded.kind == "unet" and loaded.size == 32
    images = make_batch(DataSpec(size=64), range(2)).images
    assert loaded.logits(images).shape == (2, 19, 64, 64)
    assert torch.allclose(loaded.logits(images), parser.logits(images))
    assert loaded.region_mask(images, "hair").shape == (2, 1, 64, 64)
    figures = evaluate_parser(loaded, n=2, batch=2)
    assert figures["size"] == 32 and 0.0 <= figures["mean_iou"] <= 1.0


# ---------------------------------------------------------------------------------- metrics
def test_mean_iou_on_a_known_pair() -> None:
    truth = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]])
    pred = torch.tensor([[0, 0, 0, 1], [0, 0, 1, 1]])
    inter, union, present = iou_counts(pred, truth)
    miou, per = mean_iou(inter, union, present)
    assert per == {0: 4 / 5, 1: 3 / 4}  # class 0: 4 ∩ / 5 ∪; class 1: 3 ∩ / 4 ∪
    assert miou == pytest.approx((0.8 + 0.75) / 2)
    assert mean_iou(*iou_counts(truth, truth))[0] == 1.0


def test_attribute_accuracy_on_known_predictions() -> None:
    targets = torch.full((4, len(ATTRIBUTES)), IGNORE)
    targets[:, 0] = torch.tensor([0, 1, 2, 1])
    targets[:2, 1] = torch.tensor([3, 3])
    pred = {ATTRIBUTES[0]: torch.tensor([0, 1, 0, 0]), ATTRIBUTES[1]: torch.tensor([3, 0, 9, 9]),
            ATTRIBUTES[2]: torch.zeros(4, dtype=torch.long)}
    acc = attribute_accuracy(pred, targets)
    assert acc == {ATTRIBUTES[0]: 0.5, ATTRIBUTES[1]: 0.5}  # never-visible attribute 2 left out


# ---------------------------------------------------------------------------------- CLI
def test_cli_train_and_eval(cfs: Cfs, tmp_path: Path) -> None:
    out = tmp_path / "p.safetensors"
    result = cfs("demo", "train", "parser", "--out", out, "--steps", "2", "--batch", "2", "--size", "32",
                 "--feature-scale", "16", "--styles", "photo", "--checkpoint-dir", tmp_path / "ck")
    assert result.exit_code == 0, result.output
    assert Parser.from_file(out).size == 32
    result = cfs("demo", "eval", "parser", out, "--n", "2", "--json")
    assert result.exit_code == 0, result.output
    assert 0.0 <= json.loads(result.stdout)["mean_iou"] <= 1.0
    ev = tmp_path / "e.safetensors"
    result = cfs("demo", "train", "evaluator", "--out", ev, "--steps", "1", "--batch", "2", "--size", "32",
                 "--widths", "4,8", "--half")
    assert result.exit_code == 0, result.output
    result = cfs("demo", "eval", "evaluator", ev, "--n", "2", "--size", "64")
    assert result.exit_code == 0 and "mean" in result.stdout, result.output
    from cfs_core.nets.evaluator import Evaluator

    tuned = tmp_path / "t.safetensors"  # fine-tuning starts from the file's weights (0 steps: unchanged)
    result = cfs("demo", "train", "evaluator", "--out", tuned, "--steps", "0", "--size", "32", "--widths", "4,8",
                 "--init", ev)
    assert result.exit_code == 0, result.output
    before, after = Evaluator.from_file(ev).state_dict(), Evaluator.from_file(tuned).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    result = cfs("demo", "train", "evaluator", "--out", tuned, "--steps", "1", "--size", "32", "--widths", "4,16",
                 "--init", ev)
    assert result.exit_code == 2 and "must match the run's" in result.output


def test_cli_errors_are_one_line(cfs: Cfs, tmp_path: Path) -> None:
    result = cfs("demo", "train", "colour", "--out", tmp_path / "x.safetensors")
    assert result.exit_code == 2 and "No such command" in result.output
    result = cfs("demo", "train", "parser", "--out", tmp_path / "x.pt", "--steps", "1")
    assert result.exit_code == 2 and "safetensors" in result.output
    result = cfs("demo", "eval", "evaluator", tmp_path / "missing.safetensors")
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_balanced_weights_favour_rare_classes() -> None:
    from cfs_core.training.data import BatchSource, DataSpec
    from cfs_core.training.loops import balanced_class_weights

    source = BatchSource(DataSpec(size=64, styles=("photo",), weights=(1.0,), split="train", seed=0), 4, 0)
    w = balanced_class_weights(source, n_batches=2)
    labels = ["background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
              "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth"]
    assert w.shape == (19,)
    assert w[labels.index("l_eye")] > w[labels.index("background")]  # small parts weigh more
    assert float(w.min()) >= 0.2 and float(w.max()) <= 10.0
