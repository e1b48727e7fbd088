"""IR-SE ArcFace backbone and the identity preprocessing vs the reference (spec §3, ClipFaceShop §2.5).

Numeric parity with every tensor of ``fixtures/irse`` at the suggested tolerances, key/shape/order
equality with the full IR-SE50 manifests (meta device), loading with and without BatchNorm
``num_batches_tracked``, and one-line errors for bad files.
"""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from cfs_core.checkpoints import load_state_checked
from cfs_core.errors import InputError, ModelLoadError, UnsafeCheckpointError
from cfs_core.nets.identity import (
    IdentityNet,
    identity_crop_box,
    identity_frame,
    identity_preprocess,
    identity_similarity,
)
from cfs_core.checkpoints import is_num_batches_tracked as is_bn_counter
from cfs_core.nets.irse import IRSEBackbone, IRSEConfig, infer_irse_config, load_irse, save_irse_native
from cfs_core.nets.protocols import IdentityEncoder

pytestmark = pytest.mark.usefixtures("one_thread")

FIXTURES = Path(__file__).parent.parent / "fixtures"
IRSE = FIXTURES / "irse"
MANIFESTS = FIXTURES / "manifests"
SPEC = json.loads((IRSE / "tiny_config.json").read_text())
WEIGHTS = IRSE / "tiny_irse_weights.safetensors"


@pytest.fixture(scope="module")
def irse_fx() -> dict[str, torch.Tensor]:
    return load_file(IRSE / "tiny_irse_fixture.safetensors")


@pytest.fixture(scope="module")
def irse_state() -> dict[str, torch.Tensor]:
    return load_file(WEIGHTS)


@pytest.fixture(scope="module")
def irse_net() -> IdentityNet:
    return IdentityNet.from_file(WEIGHTS)


def check(actual: torch.Tensor, name: str, fx: dict[str, torch.Tensor]) -> None:
    atol = SPEC["fixture_tensors"][name]["suggested_atol"]
    torch.testing.assert_close(actual, fx[name], atol=atol, rtol=1e-5)


def reference_extract_input(x: torch.Tensor) -> torch.Tensor:
    """StyleCLIP ``IDLoss.extract_feats`` before the backbone, written as the reference does it."""
    if x.shape[2] != 256:
        x = torch.nn.AdaptiveAvgPool2d((256, 256))(x)
    x = x[:, :, 35:223, 32:220]
    return torch.nn.AdaptiveAvgPool2d((112, 112))(x)


# ---------------------------------------------------------------------------- parity
def test_backbone_embedding(irse_net: IdentityNet, irse_fx: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        check(irse_net.backbone(irse_fx["in.x112"]), "out.embedding", irse_fx)
        # A 112 input goes through the frame (pooled up to 256, cropped, pooled back): not the identity.
        assert not torch.allclose(irse_net.preprocess(irse_fx["in.x112"]), irse_fx["in.x112"])


@pytest.mark.parametrize("case", ["pre256", "pre64", "pre96"])
def test_identity_preprocessing_and_embedding(case: str, irse_net: IdentityNet, irse_fx: dict[str, torch.Tensor]) -> None:
    x = irse_fx[f"in.{case}_in"]
    with torch.no_grad():
        check(irse_net.preprocess(x), f"out.{case}_face112", irse_fx)
        check(irse_net.embed(x), f"out.{case}_embedding", irse_fx)
        check(irse_net(x), f"out.{case}_embedding", irse_fx)


def test_every_fixture_output_is_checked() -> None:
    outputs = {k for k, v in SPEC["fixture_tensors"].items() if v["role"] == "expected_output"}
    covered = {"out.embedding"} | {f"out.{c}_{t}" for c in ("pre256", "pre64", "pre96") for t in ("face112", "embedding")}
    assert outputs == covered


def test_embeddings_are_unit(irse_net: IdentityNet, irse_fx: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        e = irse_net.embed(irse_fx["in.pre256_in"])
    torch.testing.assert_close(e.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(identity_similarity(e, e), torch.ones(2))
    assert identity_similarity(e[:1], e[1:]).abs().item() < 0.5


# ---------------------------------------------------------------------------- generalised crop
@pytest.mark.parametrize("size", [256, 1024])
def test_generalised_crop_is_the_reference_crop(size: int) -> None:
    x = torch.rand(1, 3, size, size) * 2 - 1
    assert torch.equal(identity_preprocess(x, 112), reference_extract_input(x))


def test_crop_box_scales_with_the_backbone_input() -> None:
    assert identity_frame(112) == 256 and identity_crop_box(256) == (35, 223, 32, 220)
    assert identity_frame(224) == 512 and identity_crop_box(512) == (70, 446, 64, 440)
    x = torch.rand(2, 3, 300, 200)  # any size, non-square too
    assert identity_preprocess(x, 64).shape == (2, 3, 64, 64)
    assert identity_preprocess(x, 224).shape == (2, 3, 224, 224)
    with pytest.raises(ValueError, match="expected images"):
        identity_preprocess(torch.rand(3, 64, 64))


# ---------------------------------------------------------------------------- gradients / mode
def test_embed_is_differentiable_wrt_images_only(irse_net: IdentityNet, irse_fx: dict[str, torch.Tensor]) -> None:
    x = irse_fx["in.pre64_in"].clone().requires_grad_(True)
    y = irse_fx["in.pre96_in"]
    loss = (1 - identity_similarity(irse_net.embed(x), irse_net.embed(y).detach())).mean()
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in irse_net.parameters())


def test_stays_in_eval_mode(irse_net: IdentityNet, irse_fx: dict[str, torch.Tensor]) -> None:
    parent = torch.nn.Sequential(irse_net)
    parent.train()
    assert not irse_net.training and not any(m.training for m in irse_net.modules())
    with torch.no_grad():
        check(irse_net.embed(irse_fx["in.pre256_in"]), "out.pre256_embedding", irse_fx)
    assert isinstance(irse_net, IdentityEncoder)


# ---------------------------------------------------------------------------- layout
def test_tiny_state_dict_order_and_inferred_config(irse_state: dict[str, torch.Tensor]) -> None:
    meta = SPEC["weights"]["tiny_irse_weights.safetensors"]["config"]
    cfg = infer_irse_config(irse_state)
    stages = [[i, d, u] for i, d, u in zip((cfg.stem, *cfg.widths[:-1]), cfg.widths, cfg.units)]
    assert stages == meta["stages(in,depth,units)"]
    assert (cfg.stem, cfg.widths[-1], cfg.embedding_dim, cfg.input_size) == (meta["stem"], meta["last"], meta["emb"], 112)
    assert list(IRSEBackbone(cfg).state_dict()) == [k for k, *_ in SPEC["state_dict_order"]]


@pytest.mark.parametrize("name", ["irse50_backbone", "irse50_backbone_no_num_batches_tracked"])
def test_full_size_manifest(name: str) -> None:
    manifest = json.loads((MANIFESTS / f"{name}.json").read_text())
    with torch.device("meta"):
        net = IRSEBackbone(IRSEConfig.from_depth(50))
    sd = net.state_dict()
    keep = (lambda k: True) if "no_num" not in name else (lambda k: not is_bn_counter(k))
    got = [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in sd.items() if keep(k)]
    want = [(k, v["shape"], v["dtype"]) for k, v in manifest["state_dict"].items()]
    assert got == want
    assert sum(p.numel() for p in net.parameters()) == manifest["num_parameters"] == 43_797_696
    assert [k for k in sd if k not in dict(net.named_parameters()) and keep(k)] == manifest["buffers"]
    # The manifest's tensors load strictly (counters optional) and give back the same architecture.
    file_sd = {k: torch.empty(v["shape"], dtype=getattr(torch, v["dtype"]), device="meta") for k, v in manifest["state_dict"].items()}
    assert infer_irse_config(file_sd) == IRSEConfig()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # copies into meta tensors are no-ops
        load_state_checked(net, file_sd, name, "IR-SE backbone", is_bn_counter)


# ---------------------------------------------------------------------------- files
@pytest.mark.parametrize("variant", ["with_counters", "without_counters", "wrapped", "dataparallel"])
def test_pth_layouts(variant: str, tmp_path: Path, irse_state: dict[str, torch.Tensor], irse_fx: dict[str, torch.Tensor]) -> None:
    sd: object = dict(irse_state)
    if variant == "without_counters":
        sd = {k: v for k, v in irse_state.items() if not is_bn_counter(k)}
        assert len(sd) == 172 - sum(map(is_bn_counter, irse_state)) and len(sd) < 172
    elif variant == "wrapped":
        sd = {"state_dict": irse_state}
    elif variant == "dataparallel":
        sd = {f"module.{k}": v for k, v in irse_state.items()}
    path = tmp_path / "model_ir_se50.pth"
    torch.save(sd, path)
    net = load_irse(path)
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    with torch.no_grad():
        check(net(irse_fx["in.x112"]), "out.embedding", irse_fx)


def test_native_round_trip(tmp_path: Path, irse_net: IdentityNet, irse_fx: dict[str, torch.Tensor]) -> None:
    dest = save_irse_native(tmp_path / "irse.safetensors", irse_net.backbone)
    again = IdentityNet.from_file(dest)
    assert again.backbone.config == irse_net.backbone.config
    with torch.no_grad():
        check(again.embed(irse_fx["in.pre96_in"]), "out.pre96_embedding", irse_fx)
    with pytest.raises(InputError, match="end in .safetensors"):
        save_irse_native(tmp_path / "irse.pt", irse_net.backbone)


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_bad_files(tmp_path: Path, irse_state: dict[str, torch.Tensor]) -> None:
    with pytest.raises(InputError) as exc:
        load_irse(tmp_path / "missing.pth")
    assert "no such file" in _one_line(exc)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError) as exc:
        load_irse(tmp_path / "junk.pth")
    _one_line(exc)
    broken = {k: v for k, v in irse_state.items() if k not in ("body.3.res_layer.1.weight", "body.3.res_layer.4.bias")}
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(ModelLoadError) as exc:
        load_irse(tmp_path / "broken.pth")
    assert "body.3.res_layer.1.weight" in _one_line(exc)
    broken = {k: v for k, v in irse_state.items() if k != "body.3.res_layer.4.bias"}
    broken["body.0.res_layer.5.fc9.weight"] = torch.zeros(1)
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(ModelLoadError) as exc:
        load_irse(tmp_path / "broken.pth")
    message = _one_line(exc)
    assert "missing: body.3.res_layer.4.bias" in message and "unexpected: body.0.res_layer.5.fc9.weight" in message
    save_file(load_file(FIXTURES / "e4e" / "tiny_e4e_weights.safetensors"), str(tmp_path / "e4e.safetensors"))
    with pytest.raises(ModelLoadError) as exc:
        load_irse(tmp_path / "e4e.safetensors")
    assert "e4e" in _one_line(exc)
    (tmp_path / "evil.pth").write_bytes(pickle.dumps(torch.nn.Identity()))
    with pytest.raises(UnsafeCheckpointError) as exc:
        load_irse(tmp_path / "evil.pth")
    _one_line(exc)
