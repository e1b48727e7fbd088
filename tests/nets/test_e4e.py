"""e4e encoder vs the reference (spec §4; parity README §4), its checkpoint layout and native files.

Numeric parity with every tensor of ``fixtures/e4e`` (offsets, codes, the c3 tap and the image of
the tiny StyleGAN2 on the codes) at the suggested tolerances, full-size key/shape/order equality
with the ``e4e_ffhq_encode`` manifest (meta device), an ``e4e_ffhq_encode.pt``-layout file written
with ``torch.save`` and read back through ``E4E.from_file``, and one-line errors for bad files.
"""

from __future__ import annotations

import json
import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cfs_core.errors import InputError, ModelLoadError, UnsafeCheckpointError
from cfs_core.nets.e4e import E4E, E4EConfig, Encoder4Editing, infer_e4e_config, load_e4e, save_e4e_native
from cfs_core.checkpoints import is_num_batches_tracked as is_bn_counter
from cfs_core.nets.protocols import ImageEncoder
from cfs_core.stylegan2 import Generator, GeneratorConfig, infer_generator_config

pytestmark = pytest.mark.usefixtures("one_thread")

FIXTURES = Path(__file__).parent.parent / "fixtures"
E4E_DIR = FIXTURES / "e4e"
MANIFEST = json.loads((FIXTURES / "manifests" / "e4e_ffhq_encode.json").read_text())
SPEC = json.loads((E4E_DIR / "tiny_config.json").read_text())
OPTS = {"encoder_type": "Encoder4Editing", "stylegan_size": 32, "start_from_latent_avg": True,
        "dataset_type": "ffhq_encode", "checkpoint_path": None, "lpips_lambda": 0.8}


@pytest.fixture(scope="module")
def e4e_fx() -> dict[str, torch.Tensor]:
    return load_file(E4E_DIR / "tiny_e4e_fixture.safetensors")


@pytest.fixture(scope="module")
def e4e_state() -> dict[str, torch.Tensor]:
    return load_file(E4E_DIR / "tiny_e4e_weights.safetensors")


@pytest.fixture(scope="module")
def e4e_g_state() -> dict[str, torch.Tensor]:
    return load_file(FIXTURES / "stylegan2" / "tiny_g_weights.safetensors")


@pytest.fixture(scope="module")
def e4e_encoder(e4e_state: dict[str, torch.Tensor]) -> Encoder4Editing:
    enc = Encoder4Editing(infer_e4e_config(e4e_state))
    enc.load_state_dict(e4e_state, strict=True)
    return enc.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def e4e_ckpt(e4e_state: dict[str, torch.Tensor], e4e_g_state: dict[str, torch.Tensor],
             e4e_fx: dict[str, torch.Tensor]) -> dict[str, object]:
    """A tiny ``e4e_ffhq_encode.pt`` in memory: encoder.* (reference order) then decoder.*, opts, latent_avg."""
    order = [k for k, *_ in SPEC["state_dict_order"]]
    sd = OrderedDict((f"encoder.{k}", e4e_state[k]) for k in order)
    g = Generator(infer_generator_config(e4e_g_state))
    sd.update((f"decoder.{k}", e4e_g_state[k]) for k in g.state_dict())
    return {"state_dict": sd, "opts": dict(OPTS), "latent_avg": e4e_fx["in.latent_avg"].clone()}


@pytest.fixture(scope="module")
def e4e_checkpoint(tmp_path_factory: pytest.TempPathFactory, e4e_ckpt: dict[str, object]) -> Path:
    path = tmp_path_factory.mktemp("e4e") / "e4e_ffhq_encode.pt"
    torch.save(e4e_ckpt, path)
    return path


@pytest.fixture(scope="module")
def e4e_loaded(e4e_checkpoint: Path) -> E4E:
    return E4E.from_file(e4e_checkpoint, with_generator=True)


def check(actual: torch.Tensor, name: str, fx: dict[str, torch.Tensor]) -> None:
    atol = SPEC["fixture_tensors"][name]["suggested_atol"]
    torch.testing.assert_close(actual, fx[name], atol=atol, rtol=1e-5)


# ---------------------------------------------------------------------------- parity
def test_encoder_parity(e4e_encoder: Encoder4Editing, e4e_fx: dict[str, torch.Tensor]) -> None:
    taps: list[torch.Tensor] = []
    hook = e4e_encoder.body[23].register_forward_hook(lambda m, i, out: taps.append(out))
    try:
        with torch.no_grad():
            offsets = e4e_encoder(e4e_fx["in.x"])
    finally:
        hook.remove()
    check(offsets, "out.w_offsets", e4e_fx)
    check(taps[0], "out.c3_body23", e4e_fx)
    check(offsets + e4e_fx["in.latent_avg"].repeat(2, 1, 1), "out.codes", e4e_fx)


def test_every_fixture_output_is_checked() -> None:
    outputs = {k for k, v in SPEC["fixture_tensors"].items() if v["role"] == "expected_output"}
    assert outputs == {"out.w_offsets", "out.codes", "out.c3_body23", "out.pipeline_image"}


def test_checkpoint_layout_and_pipeline_image(e4e_loaded: E4E, e4e_checkpoint: Path, e4e_fx: dict[str, torch.Tensor]) -> None:
    e4e = e4e_loaded
    assert isinstance(e4e, ImageEncoder)
    assert e4e.config.style_count == 8 and e4e.opts["stylegan_size"] == 32
    assert e4e.generator is not None and e4e.generator.n_latent == 8
    assert not e4e.training and not any(p.requires_grad for p in e4e.parameters())
    torch.testing.assert_close(e4e.generator.truncation_center(), e4e_fx["in.latent_avg"][:1])
    with torch.no_grad():
        codes = e4e.invert(e4e_fx["in.x"])
        check(codes, "out.codes", e4e_fx)
        image, _ = e4e.generator([codes], input_is_latent=True, randomize_noise=False)
        check(image, "out.pipeline_image", e4e_fx)
        check(e4e.generator.synthesis(codes, noise="const"), "out.pipeline_image", e4e_fx)
    assert load_e4e(e4e_checkpoint).generator is None  # the decoder is read only on request


def test_checkpoint_without_counters_and_training_keys(tmp_path: Path, e4e_ckpt: dict[str, object], e4e_fx: dict[str, torch.Tensor]) -> None:
    sd = e4e_ckpt["state_dict"]
    assert isinstance(sd, dict)
    ckpt = dict(e4e_ckpt, state_dict={k: v for k, v in sd.items() if not is_bn_counter(k)},
                global_step=10, best_val_loss=0.5, optimizer={"state": {}, "param_groups": []})
    torch.save(ckpt, tmp_path / "e4e.pt")
    with torch.no_grad():
        check(load_e4e(tmp_path / "e4e.pt").invert(e4e_fx["in.x"]), "out.codes", e4e_fx)


def test_native_round_trip(tmp_path: Path, e4e_loaded: E4E, e4e_fx: dict[str, torch.Tensor]) -> None:
    e4e = e4e_loaded
    dest = save_e4e_native(tmp_path / "enc.safetensors", e4e, with_generator=True, extra_metadata={"source": "test"})
    again = E4E.from_file(dest, with_generator=True)
    assert again.config == e4e.config and again.opts["stylegan_size"] == 32
    assert again.generator is not None and again.generator.config == e4e.generator.config  # type: ignore[union-attr]
    with torch.no_grad():
        check(again.reconstruct(e4e_fx["in.x"]), "out.pipeline_image", e4e_fx)
    only_encoder = save_e4e_native(tmp_path / "enc_only.safetensors", e4e)
    with pytest.raises(ModelLoadError, match="no decoder"):
        load_e4e(only_encoder, with_generator=True)
    with pytest.raises(InputError, match="end in .safetensors"):
        save_e4e_native(tmp_path / "enc.pt", e4e)


def test_invert_resizes_and_is_differentiable(e4e_encoder: Encoder4Editing, e4e_fx: dict[str, torch.Tensor]) -> None:
    e4e = E4E(e4e_encoder, e4e_fx["in.latent_avg"][0])  # a (D,) latent_avg is repeated per slot
    x = e4e_fx["in.x"][:1]
    assert e4e.resize(x) is x
    big = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest").requires_grad_(True)
    codes = e4e.invert(big)
    assert codes.shape == (1, 8, 32)
    codes.sum().backward()
    assert big.grad is not None and all(p.grad is None for p in e4e.parameters())


# ---------------------------------------------------------------------------- layout
def test_tiny_state_dict_order_and_inferred_config(e4e_state: dict[str, torch.Tensor]) -> None:
    meta = SPEC["weights"]["tiny_e4e_weights.safetensors"]["config"]
    cfg = infer_e4e_config(e4e_state)
    stages = [[i, d, u] for i, d, u in zip((cfg.stem, *cfg.widths[:-1]), cfg.widths, cfg.units)]
    assert stages == meta["stages(in,depth,units)"]
    assert (cfg.style_count, cfg.style_dim, cfg.fpn_channels, cfg.input_size) == (meta["style_count"], meta["style_dim"], meta["fpn_channels"], 256)
    assert cfg.taps == (6, 20, 23) and (cfg.coarse_ind, cfg.middle_ind) == (3, 7) and cfg.tap_sizes == (64, 32, 16)
    assert cfg == E4EConfig.from_dict(json.loads(cfg.to_json()))
    assert list(Encoder4Editing(cfg).state_dict()) == [k for k, *_ in SPEC["state_dict_order"]]


def test_full_size_manifest() -> None:
    cfg = E4EConfig.for_stylegan(1024)
    assert cfg == E4EConfig() and cfg.style_count == MANIFEST["style_count"] == 18
    with torch.device("meta"):
        enc = Encoder4Editing(cfg)
    sd = enc.state_dict()
    got = [(f"encoder.{k}", list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in sd.items()]
    want = [(k, v["shape"], v["dtype"]) for k, v in MANIFEST["state_dict"].items()]
    assert got == want
    assert sum(p.numel() for p in enc.parameters()) == MANIFEST["num_parameters"] == 267_136_704
    assert [f"encoder.{k}" for k in sd if k not in dict(enc.named_parameters())] == MANIFEST["buffers"]
    # decoder.* = the 1024 generator manifest, which tests/stylegan2 checks against the shared Generator.
    g_manifest = json.loads((FIXTURES / "manifests" / "stylegan2_generator_1024_cm2.json").read_text())
    assert MANIFEST["decoder_state_dict"] == {f"decoder.{k}": v for k, v in g_manifest["state_dict"].items()}
    file_sd = {k[len("encoder."):]: torch.empty(v["shape"], device="meta") for k, v in MANIFEST["state_dict"].items()}
    assert infer_e4e_config(file_sd) == cfg


# ---------------------------------------------------------------------------- bad files
def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def _variant(tmp_path: Path, ckpt: dict[str, object], name: str, **changes: object) -> Path:
    path = tmp_path / name
    torch.save({**ckpt, **changes}, path)
    return path


def test_bad_files(tmp_path: Path, e4e_ckpt: dict[str, object]) -> None:
    with pytest.raises(InputError) as exc:
        load_e4e(tmp_path / "missing.pt")
    assert "no such file" in _one_line(exc)
    torch.save({"g_ema": {}}, tmp_path / "g.pt")
    with pytest.raises(ModelLoadError) as exc:
        load_e4e(tmp_path / "g.pt")
    assert "not an e4e checkpoint" in _one_line(exc)
    sd = e4e_ckpt["state_dict"]
    assert isinstance(sd, dict)
    small = dict(e4e_ckpt, state_dict={"encoder.input_layer.0.weight": sd["encoder.input_layer.0.weight"]})
    with pytest.raises(ModelLoadError) as exc:
        load_e4e(_variant(tmp_path, small, "psp.pt", opts={"encoder_type": "GradualStyleEncoder"}))
    assert "GradualStyleEncoder" in _one_line(exc)
    with pytest.raises(ModelLoadError) as exc:
        load_e4e(_variant(tmp_path, small, "no_avg.pt", latent_avg=None))
    assert "latent_avg" in _one_line(exc)
    with pytest.raises(ModelLoadError) as exc:
        load_e4e(_variant(tmp_path, e4e_ckpt, "bad_avg.pt", latent_avg=torch.zeros(18, 512)))
    assert "latent_avg has shape (18, 512)" in _one_line(exc)
    broken = {k: v for k, v in sd.items() if k != "encoder.styles.7.convs.10.bias"}
    broken["encoder.latlayer1.weight"] = torch.zeros(40, 24, 3, 3)
    with pytest.raises(ModelLoadError) as exc:
        load_e4e(_variant(tmp_path, e4e_ckpt, "broken.pt", state_dict=broken))
    message = _one_line(exc)
    assert "styles.7.convs.10.bias" in message and "latlayer1.weight" in message
    encoder_only = {k: v for k, v in sd.items() if k.startswith("encoder.")}
    g64 = Generator(GeneratorConfig.from_multiplier(64, 32, 2, channel_max=16))
    wrong_g = dict(encoder_only, **{f"decoder.{k}": v for k, v in g64.state_dict().items()})
    with pytest.raises(ModelLoadError) as exc:
        load_e4e(_variant(tmp_path, e4e_ckpt, "wrong_g.pt", state_dict=wrong_g), with_generator=True)
    assert "decoder W+ (10, 32)" in _one_line(exc)
    (tmp_path / "evil.pt").write_bytes(pickle.dumps(torch.nn.Identity()))
    with pytest.raises(UnsafeCheckpointError) as exc:
        load_e4e(tmp_path / "evil.pt")
    _one_line(exc)
