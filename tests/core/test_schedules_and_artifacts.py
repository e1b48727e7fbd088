"""Learning-rate schedules (values from the specs) and the artefact cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from cfs_core.artifacts import ArtifactCache, artifact_key, fingerprint, model_digest
from cfs_core.fakes import FakeClip
from cfs_core.schedules import styleclip_lr, targetclip_lr


@pytest.mark.parametrize(("step", "lr"), [(0, 0.0), (1, 0.1 / 1.5), (2, 0.1), (75, 0.1), (150, 0.075), (225, 0.025)])
def test_targetclip_schedule_matches_the_spec_table(step: int, lr: float) -> None:
    # clipfaceshop.md §1.5: lr0 0.1, 300 steps
    assert targetclip_lr(step, 300, 0.1) == pytest.approx(lr, abs=1e-4)


def test_targetclip_schedule_ends_near_zero() -> None:
    assert targetclip_lr(299, 300, 0.1) < 1e-4


def test_styleclip_schedule() -> None:
    # §5: lr 0 at step 0, full after 5 %, cosine decay over the last 25 %
    assert styleclip_lr(0, 300, 0.1) == 0.0
    assert styleclip_lr(15, 300, 0.1) == pytest.approx(0.1)
    assert styleclip_lr(150, 300, 0.1) == pytest.approx(0.1)
    assert styleclip_lr(262, 300, 0.1) == pytest.approx(0.1 * (0.5 - 0.5 * __import__("math").cos(__import__("math").pi * 38 / 75)), rel=1e-6)


def test_fingerprint_tracks_weights() -> None:
    torch.manual_seed(0)
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    assert fingerprint(a) == fingerprint(a)
    assert fingerprint(a) != fingerprint(b)
    b.load_state_dict(a.state_dict())
    assert fingerprint(a) == fingerprint(b)


def test_artifact_key_is_order_independent_and_content_sensitive() -> None:
    assert artifact_key("x", a=1, b={"c": 2}) == artifact_key("x", b={"c": 2}, a=1)
    assert artifact_key("x", a=1) != artifact_key("x", a=2)
    assert artifact_key("x", a=1) != artifact_key("y", a=1)


def test_cache_round_trip_and_disabled_cache(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    key = artifact_key("adaptor", guidance="abc")
    assert cache.load("adaptor", key) is None
    path = cache.save("adaptor", key, {"A": torch.ones(2, 3)}, {"steps": 5})
    assert path is not None and path.exists() and not list(tmp_path.rglob("*.part*"))
    tensors, meta = cache.load("adaptor", key)  # type: ignore[misc]
    assert torch.equal(tensors["A"], torch.ones(2, 3)) and meta == {"steps": 5}
    path.write_bytes(b"garbage")
    assert cache.load("adaptor", key) is None
    off = ArtifactCache(None)
    assert off.save("adaptor", key, {"A": torch.ones(1)}, {}) is None and off.load("adaptor", key) is None


def test_fingerprint_handles_scalar_tensors() -> None:
    module = nn.Module()
    module.scale = nn.Parameter(torch.tensor(4.6))  # like CLIP's logit_scale
    assert len(fingerprint(module)) == 64


def test_model_digest_hashes_modules_tensors_and_settings() -> None:
    class Adapter:  # like the CLIP adapter: a module with a 0-d parameter (logit_scale) and settings
        def __init__(self, scale: float, mode: str) -> None:
            self.model = torch.nn.Linear(2, 2)
            torch.nn.init.ones_(self.model.weight)
            torch.nn.init.zeros_(self.model.bias)
            self.model.logit_scale = torch.nn.Parameter(torch.tensor(scale))
            self.generated_mode = mode
            self.calls = 0

    base = model_digest(Adapter(1.0, "reference"))
    counted = Adapter(1.0, "reference")
    counted.calls = 5
    assert model_digest(counted) == base
    assert model_digest(Adapter(2.0, "reference")) != base
    assert model_digest(Adapter(1.0, "other")) != base
    assert model_digest(FakeClip(seed=0)) != model_digest(FakeClip(seed=1))


def test_artifact_cache_reads_shipped_fallbacks_and_saves_to_its_root(tmp_path: Path) -> None:
    shipped, own = tmp_path / "shipped", tmp_path / "own"
    ArtifactCache(shipped).save("stats", "k1", {"x": torch.ones(2)}, {"from": "shipped"})
    cache = ArtifactCache(own, fallbacks=[shipped])
    hit = cache.load("stats", "k1")
    assert hit is not None and hit[1] == {"from": "shipped"} and cache.path("stats", "k1") == shipped / "stats" / "k1.safetensors"
    assert cache.load("stats", "other") is None
    saved = cache.save("stats", "k1", {"x": torch.zeros(2)}, {"from": "own"})
    assert saved == own / "stats" / "k1.safetensors"  # never written into the shipped folder
    assert cache.load("stats", "k1")[1] == {"from": "own"}  # the user's own cache wins
    assert ArtifactCache(shipped).load("stats", "k1")[1] == {"from": "shipped"}
