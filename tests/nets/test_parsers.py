"""Face parsers: U-Net and BiSeNet parity with the references, full-size manifests, the Parser wrapper.

Fixtures come from the parity set (tests/fixtures/{unet,bisenet}, manifests); tolerances are each
tensor's ``suggested_atol`` (10× the reference's own float32 error) with ``rtol=1e-5``.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from cfs_core.errors import InputError, ModelLoadError, UnsafeCheckpointError
from cfs_core.nets.bisenet import (
    BISENET_LABELS,
    BISENET_TO_CELEBAMASK,
    IMAGENET_MEAN,
    IMAGENET_STD,
    BiSeNet,
    BiSeNetConfig,
    infer_bisenet_config,
    load_bisenet,
)
from cfs_core.nets.parsing import Parser, faithful_clipfaceshop_mask, label_indices, region_mask_from_logits
from cfs_core.nets.protocols import CELEBAMASK_LABELS, FaceParser
from cfs_core.nets.unet import UNet, UNetConfig, batchnorm_mode, infer_unet_config, load_unet
from cfs_core.world.labels import LABEL_NAMES

FIXTURES = Path(__file__).parent.parent / "fixtures"
UNET, BISENET, MANIFESTS = FIXTURES / "unet", FIXTURES / "bisenet", FIXTURES / "manifests"
UNET_SPEC = json.loads((UNET / "tiny_config.json").read_text())
BISENET_SPEC = json.loads((BISENET / "tiny_config.json").read_text())


def check(actual: torch.Tensor, expected: torch.Tensor, spec: dict, name: str) -> None:
    atol = spec["fixture_tensors"][name]["suggested_atol"]
    torch.testing.assert_close(actual, expected, atol=atol, rtol=1e-5)


@pytest.fixture(scope="module")
def unet_fx() -> dict[str, torch.Tensor]:
    return load_file(UNET / "tiny_unet_fixture.safetensors")


@pytest.fixture(scope="module")
def bisenet_fx() -> dict[str, torch.Tensor]:
    return load_file(BISENET / "tiny_bisenet_fixture.safetensors")


@pytest.fixture
def unet() -> UNet:
    return load_unet(UNET / "tiny_unet_weights.safetensors")


@pytest.fixture
def bisenet() -> BiSeNet:
    return load_bisenet(BISENET / "tiny_bisenet_weights.safetensors")


def running_stats(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items() if "running" in k or "num_batches" in k}


def to_generator_range(x_imagenet: torch.Tensor) -> torch.Tensor:
    """The [-1, 1] image whose ImageNet normalisation is ``x_imagenet``."""
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x_imagenet * std + mean) * 2 - 1


# ---------------------------------------------------------------------------- U-Net parity
def test_unet_tiny_layout_and_config(unet: UNet) -> None:
    assert unet.config == UNetConfig(feature_scale=16)
    assert UNetConfig.from_dict(UNET_SPEC["weights"]["tiny_unet_weights.safetensors"]["config"]) == unet.config
    assert UNetConfig.from_dict(json.loads(unet.config.to_json())) == unet.config
    assert unet.config.filters == UNET_SPEC["weights"]["tiny_unet_weights.safetensors"]["config"]["filters"]
    assert [[k, list(v.shape), "float32"] for k, v in unet.state_dict().items() if v.dtype == torch.float32] == \
        [e for e in UNET_SPEC["state_dict_order"] if e[2] == "float32"]
    assert list(unet.state_dict()) == [e[0] for e in UNET_SPEC["state_dict_order"]]
    assert not unet.training and not any(p.requires_grad for p in unet.parameters())


def test_unet_parity_eval_and_trainmode_bn(unet: UNet, unet_fx: dict[str, torch.Tensor]) -> None:
    x = unet_fx["in.x"]
    before = running_stats(unet)
    with torch.no_grad():
        check(unet(x), unet_fx["out.logits_eval"], UNET_SPEC, "out.logits_eval")
        with batchnorm_mode(unet, "batch"):
            check(unet(x), unet_fx["out.logits_trainmode_bn"], UNET_SPEC, "out.logits_trainmode_bn")
            check(unet(x[:1]), unet_fx["out.logits_trainmode_bn_sample0_alone"], UNET_SPEC,
                  "out.logits_trainmode_bn_sample0_alone")
    after = running_stats(unet)
    assert all(torch.equal(before[k], after[k]) for k in before)  # a loss net leaves its statistics alone
    assert not unet.training and all(not m.training for m in unet.modules())


def test_unet_batch_update_mode_is_reference_train_mode(unet: UNet, unet_fx: dict[str, torch.Tensor]) -> None:
    x = unet_fx["in.x"]
    reference = UNet(unet.config)
    reference.load_state_dict(unet.state_dict())
    reference.train()
    with torch.no_grad():
        want = reference(x)
        with batchnorm_mode(unet, "batch_update"):
            got = unet(x)
    check(got, unet_fx["out.logits_trainmode_bn"], UNET_SPEC, "out.logits_trainmode_bn")
    torch.testing.assert_close(got, want)
    tracked = int(reference.state_dict()["conv1.conv1.1.num_batches_tracked"])
    for k, v in reference.state_dict().items():  # identical running-statistics side effect
        torch.testing.assert_close(unet.state_dict()[k], v)
    assert tracked == int(load_unet(UNET / "tiny_unet_weights.safetensors").state_dict()["conv1.conv1.1.num_batches_tracked"]) + 1
    with pytest.raises(ValueError, match="batchnorm mode"):
        with batchnorm_mode(unet, "train"):  # type: ignore[arg-type]
            pass


def test_unet_parity_through_parser(unet: UNet, unet_fx: dict[str, torch.Tensor]) -> None:
    x = unet_fx["in.x"]
    with torch.no_grad():
        check(Parser(unet).logits(x), unet_fx["out.logits_eval"], UNET_SPEC, "out.logits_eval")
        batch = Parser(unet, batchnorm="batch")
        check(batch.logits(x), unet_fx["out.logits_trainmode_bn"], UNET_SPEC, "out.logits_trainmode_bn")
        check(batch.logits(x[:1]), unet_fx["out.logits_trainmode_bn_sample0_alone"], UNET_SPEC,
              "out.logits_trainmode_bn_sample0_alone")


# ---------------------------------------------------------------------------- BiSeNet parity
def test_bisenet_tiny_layout_and_config(bisenet: BiSeNet) -> None:
    cfg = BISENET_SPEC["weights"]["tiny_bisenet_weights.safetensors"]["config"]
    assert bisenet.config == BiSeNetConfig(tuple(cfg["W"]), cfg["CP"], cfg["FFM"], cfg["MID"], cfg["n_classes"])  # type: ignore[arg-type]
    assert list(bisenet.state_dict()) == [e[0] for e in BISENET_SPEC["state_dict_order"]]


def test_bisenet_parity_three_outputs(bisenet: BiSeNet, bisenet_fx: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        out, out16, out32 = bisenet(bisenet_fx["in.x"])
        check(out, bisenet_fx["out.out"], BISENET_SPEC, "out.out")
        check(out16, bisenet_fx["out.out16"], BISENET_SPEC, "out.out16")
        check(out32, bisenet_fx["out.out32"], BISENET_SPEC, "out.out32")
        check(bisenet.logits(bisenet_fx["in.x"]), bisenet_fx["out.out"], BISENET_SPEC, "out.out")


def test_bisenet_labels_reordered_into_celebamask_order(bisenet: BiSeNet, bisenet_fx: dict[str, torch.Tensor]) -> None:
    assert sorted(BISENET_LABELS) == sorted(CELEBAMASK_LABELS)
    assert LABEL_NAMES == CELEBAMASK_LABELS
    parser = Parser(bisenet, size=None)  # the fixture's own size; ImageNet normalisation done inside
    with torch.no_grad():
        logits = parser.logits(to_generator_range(bisenet_fx["in.x"]))
    expected = bisenet_fx["out.out"]
    for cm_index, name in enumerate(CELEBAMASK_LABELS):
        check(logits[:, cm_index], expected[:, BISENET_LABELS.index(name)], BISENET_SPEC, "out.out")
    # spot checks of the two orders: nose 2 <- 10, hair 13 <- 17, cloth 18 <- 16, l_brow 6 <- 2
    assert [BISENET_TO_CELEBAMASK[i] for i in (0, 2, 13, 18, 6)] == [0, 10, 17, 16, 2]
    assert torch.equal(parser.labels(to_generator_range(bisenet_fx["in.x"])), logits.argmax(1))


# ---------------------------------------------------------------------------- manifests
MANIFEST_CASES: dict[str, Callable[[], nn.Module]] = {
    "clipfaceshop_unet_fs4_c19": lambda: UNet(UNetConfig(feature_scale=4, n_classes=19)),
    "bisenet_19": lambda: BiSeNet(BiSeNetConfig()),
}


@pytest.mark.parametrize("name", sorted(MANIFEST_CASES))
def test_full_size_matches_manifest(name: str) -> None:
    manifest = json.loads((MANIFESTS / f"{name}.json").read_text())
    with torch.device("meta"):
        module = MANIFEST_CASES[name]()
    got = [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in module.state_dict().items()]
    assert got == [(k, v["shape"], v["dtype"]) for k, v in manifest["state_dict"].items()]
    assert sum(p.numel() for p in module.parameters()) == manifest["num_parameters"]
    params = dict(module.named_parameters())
    assert [k for k in module.state_dict() if k not in params] == manifest["buffers"]
    # the architecture comes back from the shapes alone
    shapes = {k: torch.empty(v["shape"], device="meta") for k, v in manifest["state_dict"].items()}
    infer = infer_unet_config if name.startswith("clipfaceshop") else infer_bisenet_config
    assert infer(shapes) == module.config  # type: ignore[operator]


# ---------------------------------------------------------------------------- the Parser wrapper
def test_parser_is_a_frozen_face_parser(unet: UNet) -> None:
    parser = Parser(unet)
    assert isinstance(parser, FaceParser)
    parser.train()
    assert not parser.training and not parser.net.training
    assert not any(p.requires_grad for p in parser.parameters())
    assert parser.describe()["kind"] == "unet" and parser.size is None


def test_region_mask_partition_and_gradients(unet: UNet) -> None:
    parser = Parser(unet)
    images = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    parts = [parser.region_mask(images, r) for r in ("head", "outside_face", "neck", "neck_l")]
    assert all(p.shape == (2, 1, 32, 32) and p.min() >= 0 and p.max() <= 1 for p in parts)
    torch.testing.assert_close(sum(parts), torch.ones(2, 1, 32, 32))  # type: ignore[arg-type]
    hair = parser.region_mask(images, "hair")
    hair.sum().backward()
    assert images.grad is not None and torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0
    assert all(p.grad is None for p in parser.parameters())
    logits = parser.logits(images.detach())
    torch.testing.assert_close(region_mask_from_logits(logits, "hair"), hair.detach())
    assert label_indices("outside_face") == [0, 18]
    with pytest.raises(InputError, match="unknown face region 'beard'"):
        parser.region_mask(images, "beard")


def test_labels_and_input_sizes(unet: UNet, bisenet: BiSeNet) -> None:
    parser = Parser(unet)
    odd = torch.rand(1, 3, 30, 44) * 2 - 1  # not divisible by 16: padded inside, cropped back
    labels = parser.labels(odd)
    assert labels.shape == (1, 30, 44) and labels.dtype == torch.int64 and labels.max() < 19
    assert Parser(unet, size=32).logits(torch.rand(2, 3, 64, 48) * 2 - 1).shape == (2, 19, 64, 48)
    bparser = Parser(bisenet)
    assert bparser.size == 512  # its demo's input size by default
    assert Parser(bisenet, size=64).logits(torch.rand(1, 3, 40, 40) * 2 - 1).shape == (1, 19, 40, 40)
    batch_bisenet = Parser(bisenet, size=64, batchnorm="batch")
    assert batch_bisenet.logits(torch.rand(2, 3, 40, 40) * 2 - 1).shape == (2, 19, 40, 40)
    with pytest.raises(InputError, match="at least 2 images"):
        batch_bisenet.logits(torch.rand(1, 3, 40, 40))
    with pytest.raises(InputError, match=r"\[B, 3, H, W\]"):
        parser.logits(torch.rand(3, 32, 32))
    with pytest.raises(InputError, match="batchnorm"):
        Parser(unet, batchnorm="train")  # type: ignore[arg-type]


def test_faithful_clipfaceshop_mask(unet: UNet, unet_fx: dict[str, torch.Tensor]) -> None:
    parser = Parser(unet)  # eval-mode parser; the faithful mask uses batch statistics by default
    x = unet_fx["in.x"]
    before = running_stats(unet)
    mask = faithful_clipfaceshop_mask(parser, x)
    p = unet_fx["out.logits_trainmode_bn"][0]
    want = torch.sigmoid(p[0]) + torch.sigmoid(p[18])
    assert mask.shape == (2, 1, 32, 48)
    check(mask[0, 0], want, UNET_SPEC, "out.logits_trainmode_bn")
    assert torch.equal(mask[0], mask[1])  # image 0's mask for every image (the reference's quirk)
    assert all(torch.equal(v, running_stats(unet)[k]) for k, v in before.items())
    pe = unet_fx["out.logits_eval"][0]
    check(parser.faithful_clipfaceshop_mask(x, batchnorm="eval")[1, 0], torch.sigmoid(pe[0]) + torch.sigmoid(pe[18]),
          UNET_SPEC, "out.logits_eval")
    alone = unet_fx["out.logits_trainmode_bn_sample0_alone"][0]
    check(parser.faithful_clipfaceshop_mask(x[:1])[0, 0], torch.sigmoid(alone[0]) + torch.sigmoid(alone[18]),
          UNET_SPEC, "out.logits_trainmode_bn_sample0_alone")


# ---------------------------------------------------------------------------- files
def test_public_layouts_load(tmp_path: Path, unet: UNet, bisenet: BiSeNet, unet_fx: dict[str, torch.Tensor],
                             bisenet_fx: dict[str, torch.Tensor]) -> None:
    mask_net = tmp_path / "mask_net.pth"  # plain unet state dict, no module. prefix
    torch.save(unet.state_dict(), mask_net)
    parser = Parser.from_file(mask_net)
    assert parser.kind == "unet" and parser.net.config == unet.config
    with torch.no_grad():
        check(parser.logits(unet_fx["in.x"]), unet_fx["out.logits_eval"], UNET_SPEC, "out.logits_eval")
    bise = tmp_path / "79999_iter.pth"
    torch.save(bisenet.state_dict(), bise)
    bparser = Parser.from_file(bise, kind="bisenet", size=None)
    with torch.no_grad():
        logits = bparser.logits(to_generator_range(bisenet_fx["in.x"]))
    check(logits, bisenet_fx["out.out"][:, list(BISENET_TO_CELEBAMASK)], BISENET_SPEC, "out.out")
    # DataParallel prefix, and an old PyTorch's layout without num_batches_tracked
    old = tmp_path / "old.pth"
    torch.save({f"module.{k}": v for k, v in unet.state_dict().items() if "num_batches" not in k}, old)
    assert load_unet(old).config == unet.config
    wrapped = tmp_path / "wrapped.pt"
    torch.save({"state_dict": bisenet.state_dict()}, wrapped)
    assert load_bisenet(wrapped).config == bisenet.config


def test_native_round_trip(tmp_path: Path, unet: UNet, unet_fx: dict[str, torch.Tensor]) -> None:
    dest = Parser(unet, size=32, batchnorm="batch").save(tmp_path / "parser.safetensors")
    loaded = Parser.from_file(dest)
    assert (loaded.kind, loaded.size, loaded.batchnorm) == ("unet", 32, "batch")
    assert loaded.net.config == unet.config
    overridden = Parser.from_file(dest, size=None, batchnorm="eval")
    with torch.no_grad():
        check(overridden.logits(unet_fx["in.x"]), unet_fx["out.logits_eval"], UNET_SPEC, "out.logits_eval")
    with pytest.raises(InputError, match="end in .safetensors"):
        loaded.save(tmp_path / "parser.pt")


class _Evil:
    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return (print, ("pwned",))


def test_bad_files_give_one_line_errors(tmp_path: Path, unet: UNet, bisenet: BiSeNet) -> None:
    def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
        assert "\n" not in str(exc.value)
        return str(exc.value)

    with pytest.raises(InputError) as err:
        Parser.from_file(tmp_path / "missing.pth")
    one_line(err)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError) as err:
        Parser.from_file(junk)
    one_line(err)
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"conv1.conv1.0.weight": _Evil()}, protocol=2))
    with pytest.raises(UnsafeCheckpointError):
        Parser.from_file(evil)
    other = tmp_path / "other.pth"
    torch.save({"layer.weight": torch.zeros(2)}, other)
    with pytest.raises(ModelLoadError, match="not a face-parser state dict") as err:
        Parser.from_file(other)
    one_line(err)
    bise = tmp_path / "bise.pth"
    torch.save(bisenet.state_dict(), bise)
    with pytest.raises(ModelLoadError, match="expected a unet parser"):
        Parser.from_file(bise, kind="unet")
    broken = tmp_path / "broken.pth"
    sd = unet.state_dict()
    del sd["up_concat2.up.bias"]
    torch.save(sd, broken)
    with pytest.raises(ModelLoadError, match="missing: up_concat2.up.bias") as err:
        Parser.from_file(broken)
    one_line(err)
    with pytest.raises(InputError, match="kind"):
        Parser.from_file(broken, kind="segformer")
    eight = tmp_path / "eight.pth"
    torch.save(UNet(UNetConfig(feature_scale=16, n_classes=8)).state_dict(), eight)
    with pytest.raises(ModelLoadError, match="needs 19 classes"):
        Parser.from_file(eight)
