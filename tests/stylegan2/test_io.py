"""Checkpoint layouts, safety and error messages of the StyleGAN2 loader."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from cfs_core.errors import InputError, ModelLoadError, UnsafeCheckpointError
from cfs_core.stylegan2 import (
    GeneratorConfig,
    Generator,
    convert,
    describe_checkpoint,
    infer_generator_config,
    load_generator,
    read_checkpoint,
    save_native,
)

SG2 = Path(__file__).parent.parent / "fixtures" / "stylegan2"
KERNELS = [
    "convs.0.conv.blur.kernel", "convs.2.conv.blur.kernel", "convs.4.conv.blur.kernel",
    "to_rgbs.0.upsample.kernel", "to_rgbs.1.upsample.kernel", "to_rgbs.2.upsample.kernel",
]


def c_image(g: Generator, fx: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return g.synthesis(fx["in.c_wplus"])


@pytest.mark.parametrize(
    ("name", "layout", "has_avg"),
    [
        ("ros_converted_tiny.pt", "rosinality-converted", True),
        ("ros_converted_tiny_nokernels.pt", "rosinality-converted", True),
        ("ros_training_tiny.pt", "rosinality-training", False),
        ("tiny_g_weights.safetensors", "state-dict", False),
    ],
)
def test_layouts_load_g_ema(name: str, layout: str, has_avg: bool, fx: dict[str, torch.Tensor]) -> None:
    loaded = load_generator(SG2 / name)
    assert loaded.checkpoint.layout == layout
    assert loaded.which == "g_ema"
    assert (loaded.generator.latent_avg is not None) is has_avg
    torch.testing.assert_close(c_image(loaded.generator, fx), fx["out.c_image"], atol=5e-5, rtol=1e-5)
    assert not any(p.requires_grad for p in loaded.generator.parameters())


def test_latent_avg_is_the_truncation_center(fx: dict[str, torch.Tensor]) -> None:
    g = load_generator(SG2 / "ros_converted_tiny.pt").generator
    torch.testing.assert_close(g.truncation_center(), fx["in.b_truncation_latent"])
    img, _ = g([fx["in.a_z"]], truncation=0.7, randomize_noise=False)
    torch.testing.assert_close(img, fx["out.b_image"], atol=5e-5, rtol=1e-5)


def test_missing_kernels_are_exactly_the_tolerated_ones() -> None:
    raw = read_checkpoint(SG2 / "ros_converted_tiny_nokernels.pt")
    g = Generator(infer_generator_config(raw.generators["g_ema"]))
    result = g.load_state_dict(raw.generators["g_ema"], strict=False)
    assert sorted(result.missing_keys) == sorted(KERNELS)
    assert result.unexpected_keys == []


def test_training_snapshot_g_is_not_g_ema(fx: dict[str, torch.Tensor]) -> None:
    loaded = load_generator(SG2 / "ros_training_tiny.pt", which="g", with_discriminator=True)
    assert loaded.which == "g"
    diff = (c_image(loaded.generator, fx) - fx["out.c_image"]).abs().max().item()
    assert diff > 0.1  # the parity README: about 0.45
    assert loaded.discriminator is not None
    raw = loaded.checkpoint
    assert raw.extras["args"]["size"] == 32 and raw.extras["args"]["n_mlp"] == 2
    assert raw.extras["contents"] == sorted(["g", "d", "g_ema", "g_optim", "d_optim", "args", "ada_aug_p"])


def test_training_snapshot_needs_the_namespace_allowance() -> None:
    """Plain weights_only loading refuses the file; ours allows argparse.Namespace only."""
    import pickle

    with pytest.raises(pickle.UnpicklingError):
        torch.load(SG2 / "ros_training_tiny.pt", weights_only=True)
    assert read_checkpoint(SG2 / "ros_training_tiny.pt").layout == "rosinality-training"


def test_pickled_code_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    torch.save({"g_ema": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(UnsafeCheckpointError, match="posix.system|os.system|GLOBAL"):
        load_generator(tmp_path / "evil.pt")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"", "not a PyTorch checkpoint"), (b"hello world", "not a PyTorch checkpoint"), (b"PK\x03\x04broken", "not a readable")],
)
def test_corrupt_files(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=match):
        load_generator(path)


def test_corrupt_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(ModelLoadError, match="not a readable safetensors"):
        load_generator(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_generator(tmp_path / "nope.pt")
    with pytest.raises(InputError, match="is a directory"):
        load_generator(tmp_path)


def test_mismatch_names_the_keys(tmp_path: Path, tiny_g_state: dict[str, torch.Tensor]) -> None:
    sd = dict(tiny_g_state)
    sd.pop("conv1.noise.weight")
    sd["extra.weight"] = torch.zeros(1)
    sd["to_rgb1.bias"] = torch.zeros(1, 4, 1, 1)
    torch.save(sd, tmp_path / "broken.pt")
    with pytest.raises(ModelLoadError) as info:
        load_generator(tmp_path / "broken.pt")
    message = str(info.value)
    assert "1 missing: conv1.noise.weight" in message
    assert "1 unexpected: extra.weight" in message
    assert "wrong shape: to_rgb1.bias" in message
    assert "\n" not in message


def test_discriminator_only_file_is_refused() -> None:
    with pytest.raises(ModelLoadError, match="no generator"):
        load_generator(SG2 / "tiny_d_weights.safetensors")


def test_native_round_trip(tmp_path: Path, fx: dict[str, torch.Tensor]) -> None:
    dest = convert(SG2 / "ros_training_tiny.pt", tmp_path / "tiny.safetensors", with_discriminator=True)
    raw = read_checkpoint(dest)
    assert raw.layout == "cfs-native"
    assert raw.generator_config == infer_generator_config(load_file(SG2 / "tiny_g_weights.safetensors"))
    loaded = load_generator(dest, with_discriminator=True)
    torch.testing.assert_close(c_image(loaded.generator, fx), fx["out.c_image"], atol=5e-5, rtol=1e-5)
    facts = describe_checkpoint(dest)
    assert facts["source"]["source_layout"] == "rosinality-training"
    assert facts["generators"]["g_ema"]["parameters"] == 87_635
    # The generator's tensors are the rosinality state dict under a prefix.
    tensors = load_file(dest)
    assert {k.removeprefix("generator.") for k in tensors if k.startswith("generator.")} == set(load_file(SG2 / "tiny_g_weights.safetensors"))


def test_native_keeps_a_config_shapes_cannot_show(tmp_path: Path) -> None:
    cfg = GeneratorConfig(size=16, style_dim=8, n_mlp=1, channels={4: 8, 8: 8, 16: 4}, lr_mlp=0.5)
    torch.manual_seed(1)
    g = Generator(cfg)
    g.latent_avg = torch.randn(1, 8)
    save_native(tmp_path / "g.safetensors", g)
    back = load_generator(tmp_path / "g.safetensors").generator
    assert back.config == cfg
    torch.testing.assert_close(back.latent_avg, g.latent_avg)
    w = torch.randn(2, 8)
    torch.testing.assert_close(back.synthesis(w), g.synthesis(w))


def test_convert_refuses_to_overwrite_its_source(tmp_path: Path) -> None:
    src = tmp_path / "g.safetensors"
    save_native(src, Generator(GeneratorConfig(size=8, style_dim=4, n_mlp=1, channels={4: 4, 8: 4})))
    before = src.read_bytes()
    with pytest.raises(InputError, match="destination is the source"):
        convert(src, src)
    assert src.read_bytes() == before


def test_state_dict_safetensors_with_extra_tensors_fails_cleanly(tmp_path: Path) -> None:
    save_file({"foo": torch.zeros(2)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(ModelLoadError, match="do not look like a StyleGAN2"):
        load_generator(tmp_path / "x.safetensors")
