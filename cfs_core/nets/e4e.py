"""The ``"encoder"`` resource: e4e real-image inversion into W+ (spec §4; parity README §4).

:class:`Encoder4Editing` has e4e's key names (``input_layer``, ``body.N`` — the IR-SE trunk of
:mod:`cfs_core.nets.irse` without its ``output_layer`` — then ``styles.i.convs.{0,2,…}`` /
``styles.i.linear``, ``latlayer1``, ``latlayer2``) and computes, for an input of ``input_size``:

* taps ``c1, c2, c3`` = outputs of ``body[6]``, ``body[20]``, ``body[23]`` (fixed indices in the
  reference; :class:`E4EConfig` keeps them explicit and defaults to the ends of the last three
  stages, which are those indices for the IR-50 unit counts);
* ``w0 = styles[0](c3)`` in every slot, then for ``i ≥ 1`` an offset ``styles[i](f)`` with
  ``f = c3`` (``i < coarse_ind = 3``), ``p2 = up(c3) + latlayer1(c2)`` (``i < middle_ind = 7``),
  ``p1 = up(p2) + latlayer2(c1)`` otherwise; ``up`` = bilinear, ``align_corners=True``;
* each style head: ``log2(spatial)`` × [Conv2d 3×3 stride 2 + LeakyReLU(0.01)] then
  ``EqualLinear`` (lr_mul 1, no activation; the StyleGAN2 layer, numerically e4e's).

:class:`E4E` implements :class:`~cfs_core.nets.protocols.ImageEncoder`:
``invert(x) = encoder(resize(x)) + latent_avg`` (pSp with ``start_from_latent_avg``), where
``resize`` is antialiased bilinear to ``input_size`` (the tensor analogue of e4e's PIL
``Resize((256, 256))``; a no-op for 256×256 inputs). The ``decoder.*`` weights of
``e4e_ffhq_encode.pt`` load into the shared :class:`~cfs_core.stylegan2.Generator`
(``E4E.generator``, on request). Files read: ``e4e_ffhq_encode.pt`` (``{"state_dict": encoder.* +
decoder.*, "opts": dict, "latent_avg": (18, 512)}``, through ``torch_load_safe``) and cfs' native
``.safetensors`` (:func:`save_e4e_native`; config JSON in the metadata).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cfs_core.checkpoints import check_model_path, is_num_batches_tracked, load_state_checked, read_safetensors, tensor_dict, torch_load_safe
from cfs_core.errors import InputError, ModelLoadError
from cfs_core.fileio import atomic_path, storage_half
from cfs_core.nets.irse import IRSE_WIDTHS, UNITS_BY_DEPTH, IRSEConfig, build_body, build_input_layer, infer_trunk
from cfs_core.stylegan2 import Generator, GeneratorConfig, infer_generator_config
from cfs_core.stylegan2.layers import EqualLinear

NATIVE_FORMAT = "cfs.e4e"
NATIVE_VERSION = "1"


@dataclass(frozen=True)
class E4EConfig:
    """Encoder4Editing architecture (defaults: ``e4e_ffhq_encode.pt``, 18 styles of 512)."""

    stem: int = 64
    widths: tuple[int, ...] = IRSE_WIDTHS
    units: tuple[int, ...] = UNITS_BY_DEPTH[50]
    se_reduction: int = 16
    input_size: int = 256  # square encoder input
    style_count: int = 18  # W+ slots = 2·log2(generator size) − 2
    style_dim: int = 512
    taps: tuple[int, ...] = ()  # body indices of c1, c2, c3; () = ends of the last three stages
    coarse_ind: int = 3  # slots < coarse_ind read c3
    middle_ind: int = 7  # slots < middle_ind read p2, the rest p1

    def __post_init__(self) -> None:
        for key in ("widths", "units", "taps"):
            object.__setattr__(self, key, tuple(int(v) for v in getattr(self, key)))
        trunk = self.trunk  # validates widths/units
        if not self.taps:
            if len(self.units) < 3:
                raise ValueError("default taps need at least three stages")
            ends = [sum(self.units[: k + 1]) - 1 for k in range(len(self.units))]
            object.__setattr__(self, "taps", tuple(ends[-3:]))
        n_units = len(trunk.unit_plan())
        if len(self.taps) != 3 or not 0 <= self.taps[0] < self.taps[1] < self.taps[2] < n_units:
            raise ValueError(f"taps must be 3 increasing body indices below {n_units}, got {self.taps}")
        if not 1 <= self.coarse_ind < self.middle_ind or self.style_count < 1 or self.style_dim < 1:
            raise ValueError("need style_count, style_dim >= 1 and 1 <= coarse_ind < middle_ind")
        for size in self.tap_sizes:
            if size < 2 or size & (size - 1):
                raise ValueError(f"input_size {self.input_size} gives tap sizes {self.tap_sizes}; each must be a power of two >= 2")

    @classmethod
    def for_stylegan(cls, stylegan_size: int = 1024, **kwargs: Any) -> E4EConfig:
        """The reference's ``Encoder4Editing(50, 'ir_se', opts)`` for a generator of ``stylegan_size``."""
        return cls(style_count=2 * int(math.log2(stylegan_size)) - 2, **kwargs)

    @property
    def trunk(self) -> IRSEConfig:
        """The IR-SE ``input_layer`` + ``body`` part (its output-layer fields are unused)."""
        return IRSEConfig(self.stem, self.widths, self.units, self.input_size, se_reduction=self.se_reduction)

    @property
    def tap_channels(self) -> tuple[int, int, int]:
        plan = self.trunk.unit_plan()
        return tuple(plan[t][1] for t in self.taps)  # type: ignore[return-value]

    @property
    def tap_sizes(self) -> tuple[int, int, int]:
        sizes = self.trunk.feature_sizes()
        return tuple(sizes[t] for t in self.taps)  # type: ignore[return-value]

    @property
    def fpn_channels(self) -> int:
        """Width of the FPN maps and of the style heads' input (= the c3 width, 512 in e4e)."""
        return self.tap_channels[2]

    def head_level(self, i: int) -> int:
        """Feature map of style slot ``i``: 2 = c3, 1 = p2, 0 = p1 (index into the taps)."""
        return 2 if i < self.coarse_ind else 1 if i < self.middle_ind else 0

    def head_spatial(self, i: int) -> int:
        return self.tap_sizes[self.head_level(i)]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("widths", "units", "taps"):
            d[key] = list(d[key])
        return {"kind": "e4e", **d}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> E4EConfig:
        data = dict(data)
        data.pop("kind", None)
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown e4e config keys: {sorted(unknown)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


class GradualStyleBlock(nn.Module):
    """``log2(spatial)`` stride-2 convs with LeakyReLU(0.01), then ``EqualLinear(out, out)``."""

    def __init__(self, in_c: int, out_c: int, spatial: int) -> None:
        super().__init__()
        self.out_c = out_c
        layers: list[nn.Module] = []
        for k in range(int(math.log2(spatial))):
            layers += [nn.Conv2d(in_c if k == 0 else out_c, out_c, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_c, out_c, lr_mul=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.convs(x).reshape(x.shape[0], self.out_c))


def _upsample_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=y.shape[2:], mode="bilinear", align_corners=True) + y


class Encoder4Editing(nn.Module):
    """e4e ``Encoder4Editing(50, 'ir_se')``: images ``[B, 3, S, S]`` → ``w0`` + offsets ``[B, L, D]``."""

    def __init__(self, config: E4EConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or E4EConfig()
        c1_ch, c2_ch, fpn = config.tap_channels
        self.input_layer = build_input_layer(config.stem)
        self.body = build_body(config.trunk)
        self.styles = nn.ModuleList(
            GradualStyleBlock(fpn, config.style_dim, config.head_spatial(i)) for i in range(config.style_count)
        )
        self.latlayer1 = nn.Conv2d(c2_ch, fpn, 1, 1, 0)
        self.latlayer2 = nn.Conv2d(c1_ch, fpn, 1, 1, 0)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The taps ``(c1, c2, c3)`` (``body[6]``, ``body[20]``, ``body[23]`` for e4e)."""
        size = self.config.input_size
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[-2:] != (size, size):
            raise ValueError(f"e4e expects [B, 3, {size}, {size}] inputs, got {tuple(x.shape)}")
        taps = self.config.taps
        out: list[torch.Tensor] = []
        x = self.input_layer(x)
        for i, unit in enumerate(self.body[: taps[2] + 1]):
            x = unit(x)
            if i in taps:
                out.append(x)
        return out[0], out[1], out[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """W+ relative to ``latent_avg``: slot 0 = ``w0``, slot ``i`` = ``w0 + delta_i`` (all deltas applied)."""
        c1, c2, c3 = self.features(x)
        w0 = self.styles[0](c3)
        levels: dict[int, torch.Tensor] = {2: c3}
        slots = [w0]
        for i in range(1, self.config.style_count):
            level = self.config.head_level(i)
            if level not in levels:
                if 1 not in levels:
                    levels[1] = _upsample_add(c3, self.latlayer1(c2))
                if level == 0:
                    levels[0] = _upsample_add(levels[1], self.latlayer2(c1))
            slots.append(w0 + self.styles[i](levels[level]))
        return torch.stack(slots, dim=1)


# ---------------------------------------------------------------------------- config inference
def _n_convs(sd: Mapping[str, torch.Tensor], i: int) -> int:
    n = 0
    while f"styles.{i}.convs.{2 * n}.weight" in sd:
        n += 1
    return n


def infer_e4e_config(sd: Mapping[str, torch.Tensor]) -> E4EConfig:
    """Infer an :class:`E4EConfig` from an encoder ``state_dict`` (keys without ``encoder.``).

    Taps are taken as the ends of the last three stages (e4e's 6, 20, 23 for IR-50); the input
    size follows from the c3 head's conv count (``2**n`` at c3, ×2 per stage); ``coarse_ind`` and
    ``middle_ind`` from where the heads' conv counts step up.
    """
    stem, widths, units, reduction = infer_trunk(sd)
    style_count = 0
    while f"styles.{style_count}.linear.weight" in sd:
        style_count += 1
    if not style_count:
        raise ModelLoadError("not an e4e encoder state dict: no 'styles.0.linear.weight'")
    counts = [_n_convs(sd, i) for i in range(style_count)]
    n0 = counts[0]
    coarse = next((i for i, c in enumerate(counts) if c != n0), style_count)
    middle = next((i for i, c in enumerate(counts) if i >= coarse and c != n0 + 1), style_count)
    try:
        return E4EConfig(
            stem, widths, units, reduction, input_size=2 ** (n0 + len(widths)), style_count=style_count,
            style_dim=int(sd["styles.0.linear.weight"].shape[0]), coarse_ind=coarse, middle_ind=max(middle, coarse + 1),
        )
    except ValueError as exc:
        raise ModelLoadError(f"inconsistent e4e encoder shapes ({exc})") from None


# ---------------------------------------------------------------------------- the resource
class E4E(nn.Module):
    """e4e inversion (resource ``"encoder"``): images → W+ codes of the paired generator."""

    def __init__(
        self, encoder: Encoder4Editing, latent_avg: torch.Tensor | None, generator: Generator | None = None,
        opts: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        cfg = encoder.config
        self.encoder = encoder.eval().requires_grad_(False)
        if latent_avg is not None:
            latent_avg = _slot_latent_avg(latent_avg, cfg.style_count, cfg.style_dim)
        self.register_buffer("latent_avg", latent_avg)  # (L, D); None = codes are the encoder output
        if generator is not None and (generator.n_latent, generator.style_dim) != (cfg.style_count, cfg.style_dim):
            raise ValueError(f"generator W+ is ({generator.n_latent}, {generator.style_dim}), encoder gives "
                             f"({cfg.style_count}, {cfg.style_dim})")
        self.generator = generator.eval().requires_grad_(False) if generator is not None else None
        self.opts: dict[str, Any] = dict(opts or {})
        self.eval()

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu", with_generator: bool = False) -> E4E:
        """Load ``e4e_ffhq_encode.pt`` or a cfs native e4e ``.safetensors`` (decoder only on request)."""
        return load_e4e(path, device, with_generator)

    def train(self, mode: bool = True) -> E4E:
        """Always eval (BatchNorm statistics frozen)."""
        return super().train(False)

    @property
    def config(self) -> E4EConfig:
        return self.encoder.config

    @property
    def n_latent(self) -> int:
        return self.config.style_count

    @property
    def style_dim(self) -> int:
        return self.config.style_dim

    def resize(self, images: torch.Tensor) -> torch.Tensor:
        """Antialiased bilinear resize to the encoder's input size (identity when already there)."""
        size = self.config.input_size
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images [B, 3, H, W], got {tuple(images.shape)}")
        if images.shape[-2:] == (size, size):
            return images
        return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)

    def invert(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` in [-1, 1] → W+ ``[B, L, D]`` = ``encoder(resize(x)) + latent_avg``. With
        ``opts["w_code"]`` (the cfs demo encoder, trained as an autoencoder in W) the code is the
        mean of the slots, repeated: a W code written as W+."""
        param = next(self.encoder.parameters())
        codes = self.encoder(self.resize(images.to(device=param.device, dtype=param.dtype)))
        if self.opts.get("w_code"):  # cfs demo encoders: one w per image (the slots' mean), repeated
            codes = codes.mean(dim=1, keepdim=True).expand_as(codes)
        return codes if self.latent_avg is None else codes + self.latent_avg.unsqueeze(0)

    forward = invert

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Decode the inversion with the paired generator (stored noise, as e4e's ``randomize_noise=False``)."""
        if self.generator is None:
            raise InputError("this e4e model was loaded without its generator (use with_generator=True)")
        return self.generator.synthesis(self.invert(images), noise="const")


def _slot_latent_avg(avg: torch.Tensor, slots: int, dim: int) -> torch.Tensor:
    """``latent_avg`` as ``(slots, dim)``: (L, D) kept, (D,) or (1, D) repeated; else ValueError."""
    avg = avg.detach().float()
    if avg.shape == (slots, dim):
        return avg.clone()
    if avg.numel() == dim:
        return avg.reshape(1, dim).repeat(slots, 1)
    raise ValueError(f"latent_avg has shape {tuple(avg.shape)}, expected ({slots}, {dim})")


# ---------------------------------------------------------------------------- files
@dataclass
class RawE4E:
    """An e4e file's parts before any module is built."""

    path: Path
    layout: str  # "e4e" (pSp/e4e .pt checkpoint) | "cfs-native"
    encoder: dict[str, torch.Tensor]
    decoder: dict[str, torch.Tensor] | None = None
    latent_avg: torch.Tensor | None = None
    config: E4EConfig | None = None
    generator_config: GeneratorConfig | None = None
    opts: dict[str, Any] = field(default_factory=dict)


def _split(sd: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def _read_native(path: Path) -> RawE4E:
    tensors, meta = read_safetensors(path)
    if meta.get("format_name") != NATIVE_FORMAT:
        raise ModelLoadError(f"{path}: not a cfs e4e file (metadata format_name is {meta.get('format_name')!r})")
    raw = RawE4E(path, "cfs-native", _split(tensors, "encoder."), _split(tensors, "decoder.") or None, tensors.get("latent_avg"))
    try:
        if "encoder_config" in meta:
            raw.config = E4EConfig.from_dict(json.loads(meta["encoder_config"]))
        if "generator_config" in meta:
            raw.generator_config = GeneratorConfig.from_dict(json.loads(meta["generator_config"]))
        raw.opts = json.loads(meta.get("opts", "{}"))
    except (ValueError, TypeError) as exc:
        raise ModelLoadError(f"{path}: invalid config in metadata ({exc})") from None
    return raw


def read_e4e(path: str | os.PathLike[str]) -> RawE4E:
    """Read an e4e checkpoint or cfs native file into a :class:`RawE4E` (no module built)."""
    path = check_model_path(path)
    if path.suffix == ".safetensors":
        return _read_native(path)
    obj = torch_load_safe(path)
    if not isinstance(obj, Mapping) or not isinstance(obj.get("state_dict"), Mapping):
        raise ModelLoadError(f"{path}: not an e4e checkpoint (expected a dict with 'state_dict', 'opts', 'latent_avg')")
    sd = tensor_dict(obj["state_dict"], path, "state_dict")
    opts = obj.get("opts") or {}
    opts = vars(opts) if isinstance(opts, argparse.Namespace) else dict(opts) if isinstance(opts, Mapping) else {}
    encoder_type = opts.get("encoder_type", "Encoder4Editing")
    if encoder_type != "Encoder4Editing":
        raise ModelLoadError(f"{path}: encoder_type {encoder_type!r} is not supported (cfs reads e4e Encoder4Editing)")
    encoder = _split(sd, "encoder.")
    if not encoder:
        raise ModelLoadError(f"{path}: 'state_dict' has no 'encoder.*' keys")
    avg = obj.get("latent_avg")
    if opts.get("start_from_latent_avg", True):
        if not isinstance(avg, torch.Tensor):
            raise ModelLoadError(f"{path}: no 'latent_avg' tensor, but the encoder predicts offsets from it")
    else:
        avg = None
    return RawE4E(path, "e4e", encoder, _split(sd, "decoder.") or None, avg, opts=opts)


def build_e4e(raw: RawE4E, with_generator: bool = False) -> E4E:
    """Build the :class:`E4E` of a file, strictly loaded (only BN counters and FIR kernels optional)."""
    try:
        config = raw.config or infer_e4e_config(raw.encoder)
    except ModelLoadError as exc:
        raise ModelLoadError(f"{raw.path}: {exc}") from None
    encoder = Encoder4Editing(config)
    load_state_checked(encoder, raw.encoder, raw.path, "e4e encoder", is_num_batches_tracked)
    generator = None
    if with_generator:
        if raw.decoder is None:
            raise ModelLoadError(f"{raw.path}: this file holds no decoder (generator) weights")
        try:
            gen_config = raw.generator_config or infer_generator_config(raw.decoder)
        except ModelLoadError as exc:
            raise ModelLoadError(f"{raw.path}: decoder: {exc}") from None
        generator = Generator(gen_config)
        load_state_checked(generator, raw.decoder, raw.path, "e4e decoder", lambda k: k.endswith(".kernel"))
        if (generator.n_latent, generator.style_dim) != (config.style_count, config.style_dim):
            raise ModelLoadError(f"{raw.path}: decoder W+ ({generator.n_latent}, {generator.style_dim}) does not match the "
                                 f"encoder's ({config.style_count}, {config.style_dim})")
        if raw.latent_avg is not None and raw.latent_avg.ndim == 2 and torch.equal(raw.latent_avg, raw.latent_avg[:1].expand_as(raw.latent_avg)):
            generator.latent_avg = raw.latent_avg[:1].detach().float().clone()  # mean W, repeated per slot
    try:
        return E4E(encoder, raw.latent_avg, generator, raw.opts)
    except ValueError as exc:
        raise ModelLoadError(f"{raw.path}: {exc}") from None


def load_e4e(path: str | os.PathLike[str], device: str | torch.device = "cpu", with_generator: bool = False) -> E4E:
    """Load ``e4e_ffhq_encode.pt`` (or a cfs native e4e file) as a frozen :class:`E4E` on ``device``."""
    return build_e4e(read_e4e(path), with_generator).to(device)


def save_e4e_native(
    dest: str | os.PathLike[str], e4e: E4E, with_generator: bool = False, extra_metadata: Mapping[str, str] | None = None,
    half: bool = False,
) -> Path:
    """Write cfs' native e4e ``.safetensors``: ``encoder.*``, ``latent_avg`` [, ``decoder.*``], configs as JSON.
    ``half`` stores the encoder's tensors fp16 where their range allows (:func:`~cfs_core.fileio.storage_half`)."""
    from safetensors.torch import save_file

    dest = Path(dest)
    if dest.suffix != ".safetensors":
        raise InputError(f"{dest}: native model files end in .safetensors")
    tensors = {f"encoder.{k}": v.detach().cpu().contiguous() for k, v in e4e.encoder.state_dict().items()}
    if half:
        tensors = {k: storage_half(v) for k, v in tensors.items()}
    meta = {"format": "pt", "format_name": NATIVE_FORMAT, "format_version": NATIVE_VERSION,
            "encoder_config": e4e.config.to_json(),
            "opts": json.dumps({k: v for k, v in e4e.opts.items() if isinstance(v, (str, int, float, bool, type(None)))})}
    if e4e.latent_avg is not None:
        tensors["latent_avg"] = e4e.latent_avg.detach().cpu().contiguous()
    if with_generator:
        if e4e.generator is None:
            raise InputError("with_generator=True, but this e4e model has no generator")
        tensors.update({f"decoder.{k}": v.detach().cpu().contiguous() for k, v in e4e.generator.state_dict().items()})
        meta["generator_config"] = e4e.generator.config.to_json()
    meta.update(extra_metadata or {})
    with atomic_path(dest) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return dest
