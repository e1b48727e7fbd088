"""The identity net's trainer and evaluation (tiny configurations, a few steps)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from cfs_core.errors import InputError
from cfs_core.methods import ProgressEvent
from cfs_core.nets.identity import IdentityNet
from cfs_core.nets.irse import save_irse_native
from cfs_core.training.data import IDENTITY_NAMES, to_tensor_images
from cfs_core.training.identity import (
    ArcFaceHead,
    IdentityPool,
    IdentityTrainOptions,
    backbone_from_checkpoint,
    evaluate_identity,
    identity_params,
    identity_targets,
    identity_variant,
    roc_auc,
    tar_at_far,
    train_identity,
)
from cfs_core.world import SPECS

pytestmark = pytest.mark.usefixtures("one_thread")

TINY: dict[str, object] = {"identities": 3, "variants": 2, "batch": 4, "size": 32, "stem": 8, "widths": (8, 16),
                           "units": (1, 1), "input_size": 16, "embedding_dim": 16, "checkpoint_every": 10}


def _opts(tmp: Path | None, steps: int, **kw: object) -> IdentityTrainOptions:
    return IdentityTrainOptions(steps=steps, checkpoint_dir=str(tmp) if tmp else None, **{**TINY, **kw})  # type: ignore[arg-type]


def _interrupt_at(step: int) -> Callable[[ProgressEvent], None]:
    def progress(event: ProgressEvent) -> None:
        if event.stage == "train" and event.step == step:
            raise KeyboardInterrupt

    return progress


def test_variants_keep_identity_and_change_the_rest() -> None:
    base = identity_params("train", 5)
    assert list(base) == list(IDENTITY_NAMES) and len(base) == 11
    faces = [identity_variant("train", 5, v) for v in range(6)]
    for params, style, _ in faces:
        assert {n: getattr(params, n) for n in IDENTITY_NAMES} == base
        assert style in ("photo", "clipart", "sketch")
    others = [{n: v for n, v in p.to_dict().items() if SPECS[n].group != "identity"} for p, _, _ in faces]
    assert len({tuple(sorted(o.items())) for o in others}) == 6  # every variant differs in attributes/photo
    assert len({seed for _, _, seed in faces}) == 6
    assert identity_variant("train", 5, 2) == faces[2]  # deterministic
    assert identity_params("test", 5) != base and identity_params("train", 6) != base
    params, _, _ = identity_variant("train", 5, 0)
    assert params.facial_hair == "none" or params.presentation == "masculine"
    targets = identity_targets("train", 6)
    assert targets.shape == (6, 11) and targets.min() >= -1 and targets.max() <= 1
    assert targets[5, 0] == pytest.approx(base["face_width"]) and targets[5, -1] == pytest.approx(2 * base["skin_tone"] - 1)


def test_pool_is_cached(tmp_path: Path) -> None:
    pool = IdentityPool.build("train", 2, 2, 32, cache_dir=tmp_path)
    assert pool.images.shape == (4, 32, 32, 3) and pool.images.dtype == np.uint8
    assert pool.labels.tolist() == [0, 0, 1, 1]
    assert len(list(tmp_path.glob("identity-*.npz"))) == 1
    again = IdentityPool.build("train", 2, 2, 32, cache_dir=tmp_path)
    assert np.array_equal(again.images, pool.images) and again.styles.tolist() == pool.styles.tolist()


def test_auc_on_hand_examples() -> None:
    assert roc_auc([0.9, 0.8], [0.1, 0.2, 0.3]) == 1.0
    assert roc_auc([0.1, 0.2], [0.8, 0.9]) == 0.0
    assert roc_auc([0.5, 0.5], [0.5, 0.5, 0.5]) == 0.5
    assert roc_auc([0.3, 0.7], [0.5]) == 0.5
    assert roc_auc([0.5, 0.9], [0.5, 0.1]) == pytest.approx((0.5 + 1 + 1 + 1) / 4)
    assert math.isnan(roc_auc([], [0.1]))
    tar, threshold = tar_at_far(np.array([0.2, 0.6, 0.9]), np.linspace(0, 0.5, 101), far=0.01)
    assert threshold == pytest.approx(0.495) and tar == pytest.approx(2 / 3)


def test_arcface_head_applies_the_margin() -> None:
    head = ArcFaceHead(2, 2, scale=10.0, margin=0.5)
    with torch.no_grad():
        head.weight.copy_(torch.eye(2))
    emb = torch.tensor([[math.cos(0.3), math.sin(0.3)]])
    logits = head(emb, torch.tensor([0]))
    assert logits[0, 0].item() == pytest.approx(10 * math.cos(0.8), abs=1e-5)
    assert logits[0, 1].item() == pytest.approx(10 * math.sin(0.3), abs=1e-5)


def test_training_resume_is_bit_identical(tmp_path: Path) -> None:
    whole, report = train_identity(_opts(tmp_path / "a", 3))
    assert report["steps"] == 3 and report["images_seen"] == 12 and report["classes"] == 3
    losses = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["losses"].tolist()
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    with pytest.raises(KeyboardInterrupt):
        train_identity(_opts(tmp_path / "b", 3), _interrupt_at(1))
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["step"] == 1
    resumed, rep_b = train_identity(_opts(tmp_path / "b", 3))
    assert rep_b["resumed_from"] == 1
    from_ckpt, step = backbone_from_checkpoint(_opts(tmp_path / "b", 3))
    assert step == 3 and all(torch.equal(v, w) for v, w in zip(from_ckpt.state_dict().values(), resumed.state_dict().values()))
    for (k, v), w in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(v, w), k
    with pytest.raises(InputError):  # other settings, same folder
        train_identity(_opts(tmp_path / "b", 3, margin=0.5))


def test_grouped_batches_with_the_parameter_readout(tmp_path: Path) -> None:
    _, report = train_identity(_opts(tmp_path, 3, grouped=True, param_weight=1.0, batch=5))
    assert report["images_seen"] == 12  # 2 identities × 2 variants per step
    losses = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["losses"].tolist()
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)


def test_saved_backbone_loads_as_the_identity_resource(tmp_path: Path) -> None:
    backbone, _ = train_identity(_opts(None, 2))
    path = save_irse_native(tmp_path / "identity.safetensors", backbone)
    loaded = IdentityNet.from_file(path)
    assert loaded.input_size == 16 and loaded.embedding_dim == 16
    pool = IdentityPool.build("test", 2, 2, 64)
    images = to_tensor_images(pool.images)
    a, b = loaded.embed(images), IdentityNet(backbone).embed(images)
    assert torch.allclose(a, b, atol=1e-6)
    assert torch.allclose(a.norm(dim=1), torch.ones(4), atol=1e-5)
    figures = evaluate_identity(loaded, n_identities=3, variants=2, size=64)
    assert -1.0 <= figures["mean_diff"] <= 1.0 and -1.0 <= figures["mean_same"] <= 1.0
    assert 0.0 <= figures["auc"] <= 1.0 and 0.0 <= figures["tar_at_far_1pct"] <= 1.0
    assert figures["pairs"]["same"] == 3 and figures["pairs"]["diff"] == 12
    for key in ("auc_cross_style", "auc_photo"):
        assert math.isnan(figures[key]) or 0.0 <= figures[key] <= 1.0
    with pytest.raises(InputError):
        evaluate_identity(loaded, n_identities=1)
