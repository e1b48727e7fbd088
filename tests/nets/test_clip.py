"""CLIP adapter (cfs_core.clip): a tiny open_clip model built offline from a custom config.

Nothing here touches the network: every test that resolves pretrained weights runs with open_clip's
and huggingface_hub's download functions and socket connections patched to fail loudly.
"""

from __future__ import annotations

import copy
import json
import socket
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cfs_core.clip import GENERATED_MODES, TEMPLATES, ClipModel, resolve_pretrained_file
from cfs_core.errors import InputError, ModelLoadError
from cfs_core.guidance import Guidance, image_digest
from cfs_core.nets.clip_preprocess import normalized_resize, reference_kernel, reference_resize
from cfs_core.nets.protocols import ClipEncoder, unit

pytestmark = pytest.mark.usefixtures("one_thread")

TINY: dict[str, Any] = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def _tiny(**kwargs: Any) -> ClipModel:
    torch.manual_seed(0)
    return ClipModel.from_open_clip(copy.deepcopy(TINY), **kwargs)


@pytest.fixture
def tiny() -> ClipModel:
    return _tiny()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every download path of open_clip / huggingface_hub (and raw sockets) raises if reached."""
    import huggingface_hub
    import open_clip.factory
    import open_clip.pretrained

    calls: list[str] = []

    def refuse(name: str) -> Any:
        def _raise(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"network access attempted through {name}")
        return _raise

    for module, attr in [(open_clip.pretrained, "download_pretrained"), (open_clip.pretrained, "download_pretrained_from_hf"),
                         (open_clip.pretrained, "download_pretrained_from_url"), (open_clip.pretrained, "hf_hub_download"),
                         (open_clip.factory, "download_pretrained"), (open_clip.factory, "download_pretrained_from_hf"),
                         (huggingface_hub, "hf_hub_download"), (socket.socket, "connect")]:
        monkeypatch.setattr(module, attr, refuse(f"{getattr(module, '__name__', module)}.{attr}"))
    monkeypatch.setattr("urllib.request.urlopen", refuse("urllib.request.urlopen"))
    return calls


def _images(batch: int = 2, size: int = 16, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=g) * 2 - 1


def _uint8(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# -- construction ------------------------------------------------------------------------------


def test_builds_from_config_dict_and_json_file(tmp_path: Path, tiny: ClipModel) -> None:
    assert isinstance(tiny, ClipEncoder)
    assert tiny.image_size == (32, 32) and tiny.embed_dim == 16 and tiny.generated_mode == "reference"
    assert tiny.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    assert not tiny.model.training and not any(p.requires_grad for p in tiny.model.parameters())
    assert tiny.name.startswith("cfs-custom-") and tiny.dtype == torch.float32 and 0 < tiny.logit_scale

    path = tmp_path / "tiny_clip.json"
    path.write_text(json.dumps(TINY))
    torch.manual_seed(0)
    from_json = ClipModel.from_open_clip(path)
    assert from_json.name.startswith("cfs-tiny_clip-")
    assert torch.equal(from_json.encode_text(["a face"]), tiny.encode_text(["a face"]))

    wrapped = tmp_path / "open_clip_config.json"  # open_clip's hub layout: model_cfg + preprocess_cfg
    wrapped.write_text(json.dumps({"model_cfg": TINY, "preprocess_cfg": {"mean": [0.5] * 3, "std": [0.25] * 3}}))
    assert ClipModel.from_open_clip(str(wrapped)).std == (0.25, 0.25, 0.25)


def test_bad_configs_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="lacks vision_cfg"):
        ClipModel.from_open_clip({"embed_dim": 8, "text_cfg": {}})
    with pytest.raises(ModelLoadError, match="unknown open_clip model 'ViT-Q-99'"):
        ClipModel.from_open_clip("ViT-Q-99")
    with pytest.raises(ModelLoadError, match="cannot build CLIP"):
        ClipModel.from_open_clip({**TINY, "vision_cfg": {**TINY["vision_cfg"], "no_such_option": 1}})
    with pytest.raises(InputError, match="generated_mode"):
        _tiny(generated_mode="fancy")
    with pytest.raises(InputError, match="dtype"):
        _tiny(dtype=torch.int8)


# -- encoders ----------------------------------------------------------------------------------


def test_encode_text_offline(tiny: ClipModel) -> None:
    from open_clip.tokenizer import SimpleTokenizer

    assert isinstance(tiny.tokenizer, SimpleTokenizer)
    emb = tiny.encode_text(["a face", "a smiling face"])
    assert emb.shape == (2, 16) and emb.dtype == torch.float32 and not emb.requires_grad
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(2))
    assert not torch.allclose(emb[0], emb[1])
    assert tiny.encode_text("a face").shape == (1, 16)
    assert tiny.encode_text([]).shape == (0, 16)


@pytest.mark.parametrize("mode", GENERATED_MODES)
@pytest.mark.parametrize("size", [16, 64])  # 16 px: adaptive fallback (112/32); 64 px: exact (448/14)
def test_encode_generated_is_differentiable(mode: str, size: int) -> None:
    clip = _tiny(generated_mode=mode)
    images = _images(size=size).requires_grad_(True)
    emb = clip.encode_generated(images)
    assert emb.shape == (2, 16)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(2))
    (emb[:, 0].sum()).backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(p.grad is None for p in clip.model.parameters())


def test_generated_modes_differ_as_specified(tiny: ClipModel) -> None:
    images = _images(size=64)
    pixels = reference_resize(images, 32)
    torch.testing.assert_close(tiny.encode_generated(images), unit(tiny.model.encode_image(pixels)))  # no mean/std
    normalized = _tiny(generated_mode="normalized")
    proper = normalized_resize(images, 32, normalized.mean, normalized.std)
    torch.testing.assert_close(normalized.encode_generated(images), unit(normalized.model.encode_image(proper)))
    assert not torch.allclose(tiny.encode_generated(images), normalized.encode_generated(images))
    with pytest.raises(InputError, match=r"\[B, 3, H, W\]"):
        tiny.encode_generated(torch.zeros(3, 16, 16))


def test_guidance_images_are_cached_by_content(tiny: ClipModel, monkeypatch: pytest.MonkeyPatch) -> None:
    batches: list[int] = []
    original = tiny.model.encode_image

    def counting(pixels: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        batches.append(int(pixels.shape[0]))
        return original(pixels, *args, **kwargs)

    monkeypatch.setattr(tiny.model, "encode_image", counting)
    a, b = _uint8(40, 56, seed=1), _uint8(48, 48, seed=2)
    first = tiny.encode_images([a])
    assert first.shape == (1, 16) and not first.requires_grad and batches == [1]
    torch.testing.assert_close(first.norm(dim=-1), torch.ones(1))
    assert tiny.encode_images([a.copy()]) is first and batches == [1]  # same content, no re-encoding
    both = tiny.encode_images([b, a])
    assert batches == [1, 1] and torch.equal(both[1], first[0])  # only b was encoded
    guided = tiny.encode_guidance(Guidance("clipart", "b.png", image=b, digest=image_digest(b)))
    assert batches == [1, 1] and torch.equal(guided[0], both[0])
    text = tiny.encode_guidance(Guidance("text", "a face", text="a face"))
    assert tiny.encode_text(["a face"]) is text
    with pytest.raises(InputError, match="uint8 RGB"):
        tiny.encode_images([np.zeros((8, 8, 3), np.float32)])


def test_guidance_images_use_the_standard_transform(tiny: ClipModel) -> None:
    from PIL import Image

    image = _uint8(40, 64, seed=3)  # resize shorter side to 32 (bicubic), centre crop 32x32, mean/std
    resized = np.asarray(Image.fromarray(image).resize((51, 32), Image.Resampling.BICUBIC), np.float32) / 255
    left = int(round((51 - 32) / 2.0))
    crop = torch.from_numpy(resized[:, left:left + 32]).permute(2, 0, 1)[None]
    pixels = (crop - torch.tensor(tiny.mean).view(1, 3, 1, 1)) / torch.tensor(tiny.std).view(1, 3, 1, 1)
    torch.testing.assert_close(tiny.encode_images([image]), unit(tiny.model.encode_image(pixels)), atol=1e-5, rtol=0)


def test_templates_average_like_styleclip(tiny: ClipModel) -> None:
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    assert len(TEMPLATES) == 79 and all(t.count("{}") == 1 for t in TEMPLATES)
    assert list(TEMPLATES) == [t("{}") for t in OPENAI_IMAGENET_TEMPLATES if t("{}") != "a photo of many {}."]
    with torch.no_grad():
        each = unit(tiny.model.encode_text(tiny.tokenizer([t.format("face with hair") for t in TEMPLATES])))
    expected = unit(each.mean(dim=0))
    got = tiny.encode_text(["face with hair", "smiling face"], templates=True)
    torch.testing.assert_close(got[0], expected)
    assert tiny.encode_text(["face with hair"], templates=True)[0].equal(got[0])  # cached per (text, templates)
    assert not torch.allclose(got[0], tiny.encode_text(["face with hair"])[0])


# -- files -------------------------------------------------------------------------------------


def test_native_save_load_round_trip(tmp_path: Path) -> None:
    clip = _tiny(generated_mode="normalized")
    path = clip.save(tmp_path / "tiny.safetensors")
    loaded = ClipModel.from_file(path)
    assert loaded.generated_mode == "normalized" and loaded.image_size == (32, 32) and loaded.config == clip.config
    assert not loaded.model.training and not any(p.requires_grad for p in loaded.model.parameters())
    images, guide = _images(), _uint8(32, 32, seed=4)
    assert torch.equal(loaded.encode_text(["a face"]), clip.encode_text(["a face"]))
    assert torch.equal(loaded.encode_generated(images), clip.encode_generated(images))
    assert torch.equal(loaded.encode_images([guide]), clip.encode_images([guide]))
    assert ClipModel.from_file(path, generated_mode="reference").generated_mode == "reference"

    from safetensors.torch import save_file
    bare = tmp_path / "bare.safetensors"
    save_file({"x": torch.zeros(1)}, str(bare))
    with pytest.raises(ModelLoadError, match="not a cfs CLIP file"):
        ClipModel.from_file(bare)
    with pytest.raises(InputError, match=r"\.safetensors"):
        clip.save(tmp_path / "tiny.pt")


def test_local_weights_files(tmp_path: Path, tiny: ClipModel) -> None:
    from safetensors.torch import save_file

    sd = tiny.model.state_dict()
    torch.save(sd, tmp_path / "plain.pt")
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "wrapped.pt")
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "plain.safetensors"))
    images = _images()
    for name in ("plain.pt", "wrapped.pt", "plain.safetensors"):
        torch.manual_seed(123)  # a different random init, overwritten by the file
        loaded = ClipModel.from_open_clip(copy.deepcopy(TINY), pretrained=tmp_path / name)
        assert loaded.weights == tmp_path / name
        assert torch.equal(loaded.encode_text(["a face"]), tiny.encode_text(["a face"]))
        assert torch.equal(loaded.encode_generated(images), tiny.encode_generated(images))

    other = {**TINY, "text_cfg": {**TINY["text_cfg"], "width": 16}}
    with pytest.raises(ModelLoadError, match="does not match its architecture: .*wrong shape"):
        ClipModel.from_open_clip(other, pretrained=tmp_path / "plain.pt")
    with pytest.raises(InputError, match="no such file"):
        ClipModel.from_open_clip(copy.deepcopy(TINY), pretrained=tmp_path / "missing.pt")


def test_local_dir_schema(tmp_path: Path, tiny: ClipModel) -> None:
    from safetensors.torch import save_file

    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY, "preprocess_cfg": {}}))
    save_file({k: v.contiguous() for k, v in tiny.model.state_dict().items()}, str(tmp_path / "open_clip_model.safetensors"))
    loaded = ClipModel.from_open_clip(f"local-dir:{tmp_path}")
    assert loaded.weights == tmp_path / "open_clip_model.safetensors"
    assert torch.equal(loaded.encode_text(["a face"]), tiny.encode_text(["a face"]))


def test_openai_torchscript_archive_is_read_for_its_state_dict(tmp_path: Path, tiny: ClipModel) -> None:
    scripted_src = copy.deepcopy(tiny.model)
    scripted_src.register_buffer("input_resolution", torch.tensor(32))  # OpenAI's extra JIT buffers
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.jit.script(scripted_src).save(str(tmp_path / "ViT-tiny.pt"))
    except Exception as exc:  # pragma: no cover - TorchScript is deprecated in recent torch
        pytest.skip(f"torch.jit.script unavailable: {exc}")
    loaded = ClipModel.from_open_clip(copy.deepcopy(TINY), pretrained=tmp_path / "ViT-tiny.pt")
    assert torch.equal(loaded.encode_text(["a face"]), tiny.encode_text(["a face"]))


# -- reference preprocessing -------------------------------------------------------------------


@pytest.mark.parametrize("size", [1024, 256])
def test_reference_path_equals_upsample_avgpool(size: int) -> None:
    channels = 1 if size == 1024 else 3  # the path is per channel; one keeps the 7168² buffer at 200 MB
    images = torch.rand(1, channels, size, size, generator=torch.Generator().manual_seed(size)) * 2 - 1
    kernel = reference_kernel(size, 224)
    assert kernel == size * 7 // 224 and kernel in (32, 8)
    literal = nn.Sequential(nn.Upsample(scale_factor=7, mode="nearest"), nn.AvgPool2d(kernel_size=kernel))
    torch.testing.assert_close(reference_resize(images, 224), literal(images), atol=2e-5, rtol=0)


def test_reference_path_rules_for_other_sizes() -> None:
    images = _images(size=128)
    assert reference_kernel(128, 64) == 14  # 128 px generator, 64 px CLIP: exact integer rule
    literal = nn.AvgPool2d(14)(F.interpolate(images, scale_factor=7, mode="nearest"))
    torch.testing.assert_close(reference_resize(images, 64), literal, atol=1e-5, rtol=0)
    images = torch.rand(2, 3, 20, 24) * 2 - 1  # 140/32 and 168/30 are not exact: adaptive pooling
    assert reference_kernel(20, 32) is None
    adaptive = F.adaptive_avg_pool2d(F.interpolate(images, scale_factor=7, mode="nearest"), (32, 30))
    torch.testing.assert_close(reference_resize(images, (32, 30)), adaptive, atol=1e-5, rtol=0)


# -- ViT-B/32 and pretrained tags (no weights, no network) --------------------------------------


def test_vit_b32_quickgelu_architecture_without_download(no_network: list[str]) -> None:
    from open_clip.transformer import QuickGELU

    clip = ClipModel.from_open_clip("ViT-B-32-quickgelu", device="meta")
    blocks = [*clip.model.visual.transformer.resblocks, *clip.model.transformer.resblocks]
    assert len(blocks) == 24 and all(isinstance(b.mlp.gelu, QuickGELU) for b in blocks)
    assert clip.image_size == (224, 224) and clip.embed_dim == 512
    assert clip.model.visual.conv1.weight.shape == (768, 3, 32, 32)
    assert clip.model.visual.positional_embedding.shape == (50, 768)
    assert ClipModel.from_open_clip("ViT-B/32", device="meta").model.visual.transformer.resblocks[0].mlp.gelu.__class__ \
        is nn.GELU  # plain ViT-B-32 silently uses GELU
    assert no_network == []


def test_vit_b32_with_openai_tag_is_refused(no_network: list[str], tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="use 'ViT-B-32-quickgelu'") as info:
        ClipModel.from_open_clip("ViT-B-32", "openai", cache_dir=tmp_path)
    assert "\n" not in str(info.value)
    with pytest.warns(UserWarning, match="QuickGELU"), pytest.raises(ModelLoadError, match="not on this machine"):
        ClipModel.from_open_clip("ViT-B-32", "openai", cache_dir=tmp_path, allow_gelu_mismatch=True)
    assert no_network == []


def test_missing_pretrained_fails_offline_without_trying_the_network(no_network: list[str], tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        ClipModel.from_open_clip("ViT-B-32-quickgelu", "openai", cache_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message and no_network == []
    assert "open_clip_model.safetensors" in message and "timm/vit_base_patch32_clip_224.openai" in message
    assert str(tmp_path) in message and "never downloads" in message
    with pytest.raises(ModelLoadError, match="neither a pretrained tag of ViT-B-32-quickgelu"):
        ClipModel.from_open_clip("ViT-B-32-quickgelu", "no_such_tag")
    with pytest.raises(ModelLoadError, match="not in the Hugging Face cache"):
        ClipModel.from_open_clip("hf-hub:someone/some-clip", cache_dir=tmp_path)


def test_pretrained_tags_resolve_from_local_caches(monkeypatch: pytest.MonkeyPatch, no_network: list[str],
                                                   tmp_path: Path, tiny: ClipModel) -> None:
    from open_clip import factory, pretrained
    from safetensors.torch import save_file

    monkeypatch.setitem(factory._MODEL_CONFIGS, "cfs-test-tiny", copy.deepcopy(TINY))
    monkeypatch.setitem(pretrained._PRETRAINED, "cfs-test-tiny", {
        "hubtag": {"hf_hub": "cfs-test/tiny-clip/", "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},
        "urltag": {"url": "https://example.invalid/clip/tiny-clip.pt"},
    })
    sd = {k: v.contiguous() for k, v in tiny.model.state_dict().items()}
    snapshot = tmp_path / "models--cfs-test--tiny-clip" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0123abcd")
    save_file(sd, str(snapshot / "open_clip_model.safetensors"))
    torch.save(sd, tmp_path / "tiny-clip.pt")

    assert resolve_pretrained_file("cfs-test-tiny", "hubtag", tmp_path) == snapshot / "open_clip_model.safetensors"
    hub = ClipModel.from_open_clip("cfs-test-tiny", "hubtag", cache_dir=tmp_path)
    assert hub.mean == (0.5, 0.5, 0.5)  # the tag's preprocessing
    url = ClipModel.from_open_clip("cfs-test-tiny", "urltag", cache_dir=tmp_path)
    for clip in (hub, url):
        assert torch.equal(clip.encode_text(["a face"]), tiny.encode_text(["a face"]))
    assert no_network == []


def test_dtype_and_device(tiny: ClipModel) -> None:
    half = _tiny(dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16
    emb = half.encode_text(["a face"])
    assert emb.dtype == torch.float32
    assert torch.cosine_similarity(emb, tiny.encode_text(["a face"])).item() > 0.99
    assert half.encode_generated(_images()).dtype == torch.float32
    cached = tiny.encode_text(["a face"])
    assert tiny.to("cpu") is tiny and tiny.encode_text(["a face"]).device == cached.device
