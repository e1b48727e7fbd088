"""CLIP adapter (resource ``"clip"``): any open_clip model behind cfs' preprocessing rules.

With :mod:`cfs_core.clip_resolve` (which resolves a source to a config and a weights file), the only
module of cfs that imports open_clip, and only inside functions. Spec:
``styleclip_stylegan2.md`` §2 (ViT-B/32, preprocessing, open_clip mapping), §5 (CLIP loss path of
generated images), §7.3 (templates), §9 items 1–3; ``clipfaceshop.md`` §2.0 (generated vs target
asymmetry); ``architecture.md`` §7.5, §7.7 item 2.

Sources of a :class:`ClipModel` (all offline — cfs never downloads while editing):

* ``ClipModel.from_open_clip("ViT-B-32-quickgelu", "openai")`` — a built-in open_clip name and a
  pretrained tag. The tag's file must already be in the Hugging Face cache (or open_clip's URL cache
  ``~/.cache/clip``); otherwise a one-line :class:`ModelLoadError` says which file to fetch and
  where to put it. cfs resolves the file itself from the cache (``try_to_load_from_cache``) and
  never calls open_clip's download functions.
  **QuickGELU pitfall** (§2, §9.3): OpenAI's ViT-B/32 = ``ViT-B-32-quickgelu``. Plain ``ViT-B-32``
  builds ``nn.GELU`` and open_clip ≥ 2.29 only warns when it is paired with ``openai``; cfs refuses
  such a pair (a tag trained with a different activation) unless ``allow_gelu_mismatch=True``.
* ``pretrained="/path/to/file"`` — a local weights file in open_clip/OpenAI key names: ``.pt``/``.pth``
  (read with :func:`~cfs_core.checkpoints.torch_load_safe`; OpenAI's TorchScript ``ViT-B-32.pt`` is
  read with ``torch.jit.load`` for its state dict only, never run) or ``.safetensors``.
* a custom config: a dict or a JSON file (open_clip's ``{"embed_dim", "vision_cfg", "text_cfg"}`` or
  an ``open_clip_config.json`` with ``model_cfg``/``preprocess_cfg``). It is registered in open_clip's
  config table under a content-hashed name (``cfs-<stem>-<hash>``; what ``add_model_config`` does,
  without a file or a rescan), so built-in names are never shadowed.
* ``local-dir:DIR`` and ``hf-hub:ORG/REPO`` (the latter from the HF cache only).
* :meth:`ClipModel.from_file` — cfs' native ``.safetensors`` written by :meth:`ClipModel.save`
  (open_clip config, preprocess config and generated-image mode in the metadata).

Image size, mean/std, interpolation and tokenizer come from the model's own config. Models run in
eval mode without weight gradients, fp32 by default; OpenAI's ``clip.load`` runs fp16 on GPU (§2,
§9.2) — pass ``dtype=torch.float16`` for open_clip's equivalent mixed precision (LayerNorm in fp32).
Embeddings are always returned as float32 unit vectors.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from cfs_core.checkpoints import check_model_path, first_line, load_state_checked, read_safetensors, read_state_dict, \
    strip_module_prefix
from cfs_core.clip_resolve import register_config, resolve_pretrained_file, resolve_source
from cfs_core.errors import InputError, ModelLoadError
from cfs_core.fileio import atomic_path, storage_half
from cfs_core.guidance import Guidance, image_digest
from cfs_core.nets.clip_preprocess import TEMPLATES, normalized_resize, reference_resize, size_pair
from cfs_core.nets.protocols import unit

__all__ = ["TEMPLATES", "GENERATED_MODES", "ClipModel", "resolve_pretrained_file"]

GeneratedMode = Literal["reference", "normalized"]
GENERATED_MODES: tuple[str, ...] = ("reference", "normalized")
NATIVE_FORMAT = "cfs.clip"
NATIVE_VERSION = "1"
CACHE_ENTRIES = 4096
_PRECISION = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
_JIT_EXTRAS = ("input_resolution", "context_length", "vocab_size")  # OpenAI TorchScript buffers
_log = logging.getLogger(__name__)
_TOKENIZERS: dict[str, Any] = {}  # by text config: building the BPE tables takes ~0.1 s


@contextlib.contextmanager
def _open_clip_guard() -> Iterator[None]:
    """Around open_clip calls: Hugging Face offline mode (the variable, and the constant that
    huggingface_hub read at import), and open_clip's root-logger warnings silenced ("initialized
    randomly": cfs loads the weights itself) without ``logging.warning`` adding a root handler."""
    constants = sys.modules.get("huggingface_hub.constants")
    env, const, level = os.environ.get("HF_HUB_OFFLINE"), getattr(constants, "HF_HUB_OFFLINE", None), \
        logging.root.manager.disable
    guard = logging.NullHandler()
    logging.root.addHandler(guard)
    logging.disable(logging.WARNING)
    os.environ["HF_HUB_OFFLINE"] = "1"
    if constants is not None:
        setattr(constants, "HF_HUB_OFFLINE", True)  # noqa: B010 - a module attribute
    try:
        yield
    finally:
        logging.disable(level)
        logging.root.removeHandler(guard)
        if env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = env
        if constants is not None:
            setattr(constants, "HF_HUB_OFFLINE", const)  # noqa: B010


# ---------------------------------------------------------------------------------------------
# Reading weights


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.split("/", 1)[-1] == "constants.pkl" for n in archive.namelist())


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A CLIP state dict from ``.safetensors``, a ``.pt`` state dict (optionally under
    ``state_dict``, ``module.``-prefixed), or OpenAI's TorchScript archive (state dict only)."""
    if path.suffix != ".safetensors" and _is_torchscript(path):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit deprecation note
                sd = dict(torch.jit.load(str(path), map_location="cpu").state_dict())
        except RuntimeError as exc:
            raise ModelLoadError(f"{path}: not a readable TorchScript archive ({first_line(exc)})") from None
        for key in _JIT_EXTRAS:
            sd.pop(key, None)
        return strip_module_prefix(sd)
    return read_state_dict(path, "state_dict")[1]


def _load_weights(model: nn.Module, sd: dict[str, torch.Tensor], path: Path) -> None:
    """open_clip's ``load_checkpoint`` massaging, then a strict load with named-key errors."""
    from open_clip.convert import convert_state_dict
    from open_clip.model import resize_pos_embed

    transient = {k for k, _ in model.named_buffers()} - set(model.state_dict())  # e.g. attn_mask in JIT files
    sd = convert_state_dict(model, {k: v for k, v in sd.items() if k not in transient})
    scale = getattr(model, "logit_scale", None)
    if "logit_scale" in sd and isinstance(scale, torch.Tensor) and sd["logit_scale"].ndim != scale.ndim:
        sd["logit_scale"] = sd["logit_scale"].reshape(scale.shape)
    resize_pos_embed(sd, model)
    load_state_checked(model, sd, path, "CLIP state dict")


def _build(name: str, config: dict[str, Any], preprocess: Mapping[str, Any], weights: Path | None,
           state: dict[str, torch.Tensor] | None, device: str | torch.device, dtype: torch.dtype,
           generated_mode: str) -> ClipModel:
    import open_clip

    if dtype not in _PRECISION:
        raise InputError(f"CLIP dtype must be one of {', '.join(map(str, _PRECISION))}, not {dtype}")
    if generated_mode not in GENERATED_MODES:
        raise InputError(f"generated_mode must be one of {', '.join(GENERATED_MODES)}, not '{generated_mode}'")
    device = torch.device(device)
    overrides = {k: v for k, v in preprocess.items() if k != "size"}  # the model's own size rules
    on_meta = device.type == "meta"
    try:
        with _open_clip_guard(), (torch.device("meta") if on_meta else contextlib.nullcontext()):
            model = open_clip.create_model(
                name, pretrained=None, load_weights=False, precision=_PRECISION[dtype],
                device="cpu" if not on_meta else device, pretrained_image=False, pretrained_text=False,
                force_preprocess_cfg=overrides)
            key = json.dumps([config.get("text_cfg"), "siglip" in name.lower()], sort_keys=True, default=str)
            tokenizer = _TOKENIZERS.get(key) or _TOKENIZERS.setdefault(key, open_clip.get_tokenizer(name))
    except (TypeError, ValueError, KeyError, RuntimeError, AssertionError, ImportError, OSError) as exc:
        raise ModelLoadError(f"cannot build CLIP '{name}' from its config ({first_line(exc)})") from None
    if state is not None or weights is not None:
        assert weights is not None
        _load_weights(model, state if state is not None else _read_state_dict(weights), weights)
    else:
        _log.info("CLIP %s: no pretrained weights given, random initialisation", name)
    model = model.to(device).eval().requires_grad_(False)
    return ClipModel(model, tokenizer, name=name, config=config, generated_mode=generated_mode,  # type: ignore[arg-type]
                     weights=weights, dtype=dtype)


# ---------------------------------------------------------------------------------------------


class ClipModel:
    """An open_clip model as cfs' :class:`~cfs_core.nets.protocols.ClipEncoder` (resource ``"clip"``).

    Build with :meth:`from_open_clip` or :meth:`from_file`. Text and guidance-image embeddings are
    cached by content (LRU, :data:`CACHE_ENTRIES` rows); returned tensors are shared with the cache —
    treat them as read-only.
    """

    def __init__(self, model: nn.Module, tokenizer: Callable[..., torch.Tensor], *, name: str,
                 config: Mapping[str, Any], generated_mode: GeneratedMode = "reference",
                 weights: Path | None = None, dtype: torch.dtype = torch.float32) -> None:
        from open_clip.model import get_model_preprocess_cfg
        from open_clip.transform import PreprocessCfg, image_transform_v2

        self.model: Any = model  # an open_clip CLIP / CustomTextCLIP (typed loosely: nn.Module attributes)
        self.tokenizer = tokenizer
        self.name = name
        self.config = dict(config)
        self.generated_mode: GeneratedMode = generated_mode
        self.weights = weights
        self.dtype = dtype  # compute dtype of the weights (open_clip keeps LayerNorm/embeddings in fp32)
        self.preprocess_cfg: dict[str, Any] = dict(get_model_preprocess_cfg(model))
        self.image_size: tuple[int, int] = size_pair(self.preprocess_cfg["size"])
        self.mean: tuple[float, ...] = tuple(float(v) for v in self.preprocess_cfg["mean"])
        self.std: tuple[float, ...] = tuple(float(v) for v in self.preprocess_cfg["std"])
        self.embed_dim: int = int(config["embed_dim"])
        self.transform = image_transform_v2(PreprocessCfg(**self.preprocess_cfg), is_train=False)
        self._cache: OrderedDict[Hashable, torch.Tensor] = OrderedDict()  # LRU of embeddings

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    def from_open_clip(cls, model: str | os.PathLike[str] | Mapping[str, Any],
                       pretrained: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu", *,
                       dtype: torch.dtype = torch.float32, generated_mode: GeneratedMode = "reference",
                       cache_dir: str | os.PathLike[str] | None = None,
                       allow_gelu_mismatch: bool = False) -> ClipModel:
        """Build from an open_clip name (``"ViT-B-32-quickgelu"``; ``"ViT-B/32"`` is accepted), a
        ``local-dir:``/``hf-hub:`` name, a config dict or a JSON config file; ``pretrained`` is a tag
        (resolved offline, see :func:`resolve_pretrained_file`), a local weights file, or None
        (random weights, logged). ``device="meta"`` builds the architecture without memory."""
        name, config, preprocess, weights = resolve_source(model, pretrained, cache_dir, allow_gelu_mismatch)
        return _build(name, config, preprocess, weights, None, device, dtype, generated_mode)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu", *,
                  dtype: torch.dtype = torch.float32, generated_mode: GeneratedMode | None = None) -> ClipModel:
        """Load cfs' native CLIP ``.safetensors`` written by :meth:`save`."""
        path = check_model_path(path)
        sd, meta = read_safetensors(path)
        if meta.get("format_name") != NATIVE_FORMAT:
            raise ModelLoadError(f"{path}: not a cfs CLIP file (no CLIP config in its metadata); for a bare state dict use "
                                 "ClipModel.from_open_clip(<model name or config>, pretrained=<file>)")
        try:
            config, preprocess = json.loads(meta["config"]), json.loads(meta.get("preprocess_cfg", "{}"))
        except (KeyError, ValueError) as exc:
            raise ModelLoadError(f"{path}: invalid CLIP config in metadata ({first_line(exc)})") from None
        stem = re.sub(r"^cfs-|-[0-9a-f]{12}$", "", meta.get("model_name", "file"))
        name = register_config(config, "".join(c for c in stem if c.isalnum() or c in "-_.")[:40] or "file")
        mode = generated_mode or meta.get("generated_mode", "reference")
        return _build(name, config, preprocess, path, sd, device, dtype, mode)

    def save(self, path: str | os.PathLike[str], extra_metadata: Mapping[str, str] | None = None, *,
             half: bool = False) -> Path:
        """Write cfs' native ``.safetensors``: the state dict plus the open_clip config, preprocess
        config and generated-image mode as JSON metadata (``architecture.md`` §7.5).

        ``extra_metadata``: more string entries (e.g. a training report; cfs' own keys win).
        ``half``: store the floating tensors as fp16 (half the file; :meth:`from_file` loads them
        into the model's own dtype, fp32 by default)."""
        from safetensors.torch import save_file

        dest = Path(path)
        if dest.suffix != ".safetensors":
            raise InputError(f"{dest}: native model files end in .safetensors")
        tensors = {}
        for k, v in self.model.state_dict().items():
            v = v.detach().cpu()
            tensors[k] = (storage_half(v) if half else v).contiguous()
        meta = {str(k): str(v) for k, v in (extra_metadata or {}).items()}
        meta.update({"format": "pt", "format_name": NATIVE_FORMAT, "format_version": NATIVE_VERSION,
                     "config": json.dumps(self.config, sort_keys=True), "model_name": self.name,
                     "preprocess_cfg": json.dumps(self.preprocess_cfg), "generated_mode": self.generated_mode})
        with atomic_path(dest) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        return dest

    # -- state -----------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def logit_scale(self) -> float:
        """``exp`` of the model's learned log temperature: logits = ``logit_scale · cos`` (100 for
        OpenAI's ViT-B/32, which StyleCLIP divides by)."""
        return float(self.model.logit_scale.detach().float().exp())

    def to(self, device: str | torch.device) -> ClipModel:
        """Move the model and the cached embeddings; returns self."""
        self.model.to(device)
        for key, value in self._cache.items():
            self._cache[key] = value.to(device)
        return self

    def __repr__(self) -> str:
        return (f"ClipModel({self.name!r}, image_size={self.image_size}, embed_dim={self.embed_dim}, "
                f"generated_mode={self.generated_mode!r}, device={self.device}, dtype={self.dtype})")

    # -- encoders --------------------------------------------------------------------------------

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return unit(self.model.encode_image(pixels.to(self.dtype)).float())

    def encode_generated(self, images: torch.Tensor) -> torch.Tensor:
        """Generator images ``[B, 3, H, W]`` in [-1, 1] → ``[B, D]`` unit vectors, differentiable
        w.r.t. the images. ``"reference"`` mode: StyleCLIP/ClipFaceShop's ×7 nearest upsampling and
        average pooling, **no** mean/std (``clipfaceshop.md`` §2.0); ``"normalized"``: [0, 1],
        bicubic resize + centre crop, mean/std (see :mod:`cfs_core.nets.clip_preprocess`)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise InputError(f"generated images must be [B, 3, H, W], got {tuple(images.shape)}")
        x = images.to(device=self.device, dtype=torch.float32)
        if self.generated_mode == "reference":
            x = reference_resize(x, self.image_size)
        else:
            x = normalized_resize(x, self.image_size, self.mean, self.std)
        return self._image_features(x)

    def _cached(self, kind: str, keys: list[Hashable], compute: Callable[[list[int]], torch.Tensor]) -> torch.Tensor:
        """Rows for ``keys`` from the cache; ``compute(indices)`` encodes the missing ones."""
        cache = self._cache

        def put(key: Hashable, value: torch.Tensor) -> None:
            cache[key] = value
            cache.move_to_end(key)
            while len(cache) > CACHE_ENTRIES:
                cache.popitem(last=False)

        batch_key = (kind, "batch", tuple(keys))
        if batch_key in cache:
            cache.move_to_end(batch_key)
            return cache[batch_key]
        rows = {k: cache[(kind, k)] for k in keys if (kind, k) in cache}
        missing = [k for k in dict.fromkeys(keys) if k not in rows]
        if missing:
            with torch.no_grad():
                fresh = compute([keys.index(k) for k in missing])
            for key, row in zip(missing, fresh, strict=True):
                rows[key] = row
                put((kind, key), row)
        for key in rows:
            if (kind, key) in cache:
                cache.move_to_end((kind, key))
        out = torch.stack([rows[k] for k in keys]) if keys else torch.zeros(0, self.embed_dim, device=self.device)
        put(batch_key, out)
        return out

    def encode_images(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """Guidance images (uint8 RGB ``[H, W, 3]``) → ``[N, D]`` unit vectors: open_clip's eval
        transform of the model (shorter side bicubic, centre crop, mean/std; §2), no gradients,
        cached by content digest."""
        from PIL import Image

        for i, image in enumerate(images):
            if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                what = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
                raise InputError(f"guidance image {i} must be a uint8 RGB array [H, W, 3], got {what}")

        def compute(indices: list[int]) -> torch.Tensor:
            pixels = torch.stack([self.transform(Image.fromarray(images[i])) for i in indices])
            return self._image_features(pixels.to(self.device))

        return self._cached("image", [image_digest(im) for im in images], compute)

    def encode_text(self, texts: Sequence[str], templates: bool | Sequence[str] = False) -> torch.Tensor:
        """Texts → ``[N, D]`` unit vectors with the model's tokenizer, cached by (text, templates).

        ``templates=True``: StyleCLIP's ``zeroshot_classifier`` (§7.3) — each text formatted with the
        79 :data:`TEMPLATES`, encoded, normalised, averaged, normalised again. A sequence of
        ``"…{}…"`` strings uses those templates instead.
        """
        if isinstance(texts, str):
            texts = [texts]
        forms: tuple[str, ...] = TEMPLATES if templates is True else tuple(templates) if templates else ()
        texts = [str(t) for t in texts]

        def encode(batch: list[str]) -> torch.Tensor:
            tokens = self.tokenizer(batch).to(self.device)
            return unit(self.model.encode_text(tokens).float())

        def compute(indices: list[int]) -> torch.Tensor:
            if not forms:
                return encode([texts[i] for i in indices])
            return torch.stack([unit(encode([f.format(texts[i]) for f in forms]).mean(dim=0)) for i in indices])

        return self._cached("text", [(t, forms) for t in texts], compute)

    def encode_guidance(self, guidance: Guidance, templates: bool = False) -> torch.Tensor:
        """``[1, D]``: a text guidance through :meth:`encode_text`, an image through :meth:`encode_images`."""
        if guidance.text is not None:
            return self.encode_text([guidance.text], templates=templates)
        if guidance.image is not None:
            return self.encode_images([guidance.image])
        raise InputError(f"{guidance.kind} guidance has neither a text nor an image")
