"""StyleCLIP's latent mapper (``LevelsMapper``), its checkpoints, and cfs' native mapper files.

Spec: ``styleclip_stylegan2.md`` §6 (architecture, checkpoint layout, inference) and §9 item 7;
parity README §7. Module tree (StyleCLIP ``mapper/latent_mappers.py``):

* ``Mapper``: ``mapping = Sequential(PixelNorm, 4 × EqualLinear(D, D, lr_mul=0.01, fused leaky
  ReLU))`` — keys ``mapping.{1..4}.{weight, bias}``; the last layer is activated too;
* ``LevelsMapper``: ``course_mapping`` (sic), ``medium_mapping``, ``fine_mapping``; a level built
  with ``no_{coarse,medium,fine}_mapper`` has no module (no keys) and outputs zeros.

Quirks reproduced (§6, §9.7): PixelNorm normalises over **dim 1**, i.e. across the W+ entries of a
level slice, separately per feature; EqualLinear's bias is added on the **last** dim of the 3-D
``[B, L, D]`` input (the shared :func:`cfs_core.stylegan2.ops.fused_leaky_relu` does this). Both
come from reusing :class:`~cfs_core.stylegan2.layers.PixelNorm` and
:class:`~cfs_core.stylegan2.layers.EqualLinear`.

**Level boundaries for any** ``n_latent`` (cfs generalisation, documented rule): the reference
slices ``x[:, :4]``, ``x[:, 4:8]``, ``x[:, 8:]`` on the 18 W+ entries of a 1024 generator (and on
14 at 256). The boundaries are tied to resolution — entries 0–3 drive 4²–8² (coarse), 4–7 drive
16²–32² (medium), 8 onwards drive 64² and up (fine) — so cfs keeps ``boundaries=(4, 8)`` for every
generator and clips them to ``n_latent``: coarse = ``[0, min(4, L))``, medium =
``[min(4, L), min(8, L))``, fine = ``[min(8, L), L)``. A generator of 32 px or less (L ≤ 8) has
no fine entries; 16 px (L = 6) has only two medium ones. Other boundaries can be configured.

Use: ``w_hat = w + strength · M(w)`` with StyleCLIP's ``strength = 0.1`` (:meth:`LevelsMapper.apply`).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cfs_core.checkpoints import check_model_path, load_state_checked, read_safetensors, torch_load_safe
from cfs_core.errors import InputError, ModelLoadError
from cfs_core.fileio import atomic_path
from cfs_core.stylegan2.layers import EqualLinear, PixelNorm

NATIVE_FORMAT = "cfs.levels_mapper"
NATIVE_VERSION = "1"
LEVELS: tuple[str, ...] = ("coarse", "medium", "fine")
_ATTR = {"coarse": "course_mapping", "medium": "medium_mapping", "fine": "fine_mapping"}  # sic: "course"


@dataclass(frozen=True)
class LevelsMapperConfig:
    """Architecture of a :class:`LevelsMapper` (defaults = StyleCLIP's FFHQ mappers)."""

    latent_dim: int = 512
    no_coarse_mapper: bool = False
    no_medium_mapper: bool = False
    no_fine_mapper: bool = False
    boundaries: tuple[int, int] = (4, 8)
    lr_mul: float = 0.01
    n_layers: int = 4

    def __post_init__(self) -> None:
        object.__setattr__(self, "boundaries", tuple(int(b) for b in self.boundaries))
        lo, hi = self.boundaries
        if not 0 <= lo <= hi:
            raise ValueError(f"mapper level boundaries must satisfy 0 <= coarse_end <= medium_end, got {self.boundaries}")
        if self.latent_dim < 1 or self.n_layers < 1:
            raise ValueError("mapper latent_dim and n_layers must be positive")

    def enabled(self, level: str) -> bool:
        return not getattr(self, f"no_{level}_mapper")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["boundaries"] = list(self.boundaries)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LevelsMapperConfig:
        known = {"latent_dim", "no_coarse_mapper", "no_medium_mapper", "no_fine_mapper", "boundaries", "lr_mul", "n_layers"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown mapper config keys: {sorted(unknown)}")
        return cls(**{k: (tuple(v) if k == "boundaries" else v) for k, v in d.items()})


class Mapper(nn.Module):
    """StyleCLIP ``Mapper``: ``mapping = [PixelNorm (dim 1), n × EqualLinear(lr_mul, fused lrelu)]``."""

    def __init__(self, latent_dim: int = 512, lr_mul: float = 0.01, n_layers: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = [PixelNorm()]
        layers += [EqualLinear(latent_dim, latent_dim, lr_mul=lr_mul, activation=True) for _ in range(n_layers)]
        self.mapping = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mapping(x)


class LevelsMapper(nn.Module):
    """StyleCLIP ``LevelsMapper``: one :class:`Mapper` per level group of W+ entries.

    ``forward(w)``: W+ ``[B, L, D]`` → the delta ``[B, L, D]``; each level group goes through its
    own mapper (or becomes zeros when disabled), concatenated back on dim 1.
    """

    course_mapping: Mapper | None
    medium_mapping: Mapper | None
    fine_mapping: Mapper | None

    def __init__(self, config: LevelsMapperConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or LevelsMapperConfig()
        for level in LEVELS:  # registration order = state_dict order: course, medium, fine
            mapper = Mapper(cfg.latent_dim, cfg.lr_mul, cfg.n_layers) if cfg.enabled(level) else None
            setattr(self, _ATTR[level], mapper)

    def level_slices(self, n_latent: int) -> dict[str, slice]:
        """The W+ entries of each level for a generator with ``n_latent`` entries (module docstring)."""
        lo, hi = (min(b, n_latent) for b in self.config.boundaries)
        return {"coarse": slice(0, lo), "medium": slice(lo, hi), "fine": slice(hi, n_latent)}

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if w.ndim != 3 or w.shape[-1] != self.config.latent_dim:
            raise InputError(f"mapper input must be W+ [B, L, {self.config.latent_dim}], got {list(w.shape)}")
        parts = []
        for level, sl in self.level_slices(w.shape[1]).items():
            x = w[:, sl]
            mapper = getattr(self, _ATTR[level])
            parts.append(mapper(x) if mapper is not None and x.shape[1] > 0 else torch.zeros_like(x))
        return torch.cat(parts, dim=1)

    def apply(self, w: Any, strength: float = 0.1) -> Any:  # type: ignore[override]
        """The edited code ``w + strength · M(w)`` (StyleCLIP inference uses 0.1).

        Called with a function instead of a tensor, this is :meth:`torch.nn.Module.apply` (so
        ``parent.apply(init_fn)`` still recurses through the mapper).
        """
        if not isinstance(w, torch.Tensor):
            return super().apply(w)
        return w + strength * self(w)


# ---------------------------------------------------------------------------- loading
@dataclass
class LoadedMapper:
    """A built mapper and what its file held besides it."""

    mapper: LevelsMapper
    path: Path
    layout: str  # "styleclip" | "state-dict" | "cfs-native"
    opts: dict[str, Any] = field(default_factory=dict)  # StyleCLIP training options (plain values)
    decoder_state: dict[str, torch.Tensor] | None = None  # "decoder.*" keys, prefix stripped


def infer_mapper_config(sd: Mapping[str, torch.Tensor], opts: Mapping[str, Any] | None = None) -> LevelsMapperConfig:
    """The config whose module has the keys/shapes of ``sd`` (keys without the ``mapper.`` prefix).

    The enabled levels are the ones with keys; if ``opts`` (a checkpoint's options) disagrees,
    the file is inconsistent and a :class:`ModelLoadError` says so.
    """
    present = {level: any(k.startswith(_ATTR[level] + ".") for k in sd) for level in LEVELS}
    if not any(present.values()):
        raise ModelLoadError("no LevelsMapper keys (course_mapping.*, medium_mapping.*, fine_mapping.*)")
    level = next(lv for lv in LEVELS if present[lv])
    first = sd.get(f"{_ATTR[level]}.mapping.1.weight")
    if first is None or first.ndim != 2:
        raise ModelLoadError(f"no 2-D {_ATTR[level]}.mapping.1.weight")
    n_layers = sum(1 for k in sd if k.startswith(f"{_ATTR[level]}.mapping.") and k.endswith(".weight"))
    for lv in LEVELS:
        flag = f"no_{lv}_mapper"
        if opts is not None and flag in opts and bool(opts[flag]) == present[lv]:
            have = "has" if present[lv] else "lacks"
            raise ModelLoadError(f"options say {flag}={bool(opts[flag])} but the state dict {have} {_ATTR[lv]} keys")
    return LevelsMapperConfig(latent_dim=int(first.shape[1]), n_layers=n_layers,
                              **{f"no_{lv}_mapper": not present[lv] for lv in LEVELS})


def _plain_opts(obj: Any) -> dict[str, Any]:
    if isinstance(obj, argparse.Namespace):
        obj = vars(obj)
    if not isinstance(obj, Mapping):
        return {}
    return {str(k): v for k, v in obj.items() if isinstance(v, (int, float, str, bool, type(None)))}


def build_mapper(sd: Mapping[str, torch.Tensor], path: Path | str, opts: Mapping[str, Any] | None = None,
                 config: LevelsMapperConfig | None = None) -> LevelsMapper:
    """A :class:`LevelsMapper` with ``sd`` (un-prefixed keys) loaded strictly, in eval mode, no grads."""
    try:
        cfg = config or infer_mapper_config(sd, opts)
    except ModelLoadError as exc:
        raise ModelLoadError(f"{path}: {exc}") from None
    mapper = LevelsMapper(cfg)
    load_state_checked(mapper, sd, path, "LevelsMapper")
    return mapper.eval().requires_grad_(False)


def load_mapper(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> LoadedMapper:
    """Load a StyleCLIP mapper checkpoint, a bare mapper state dict, or a cfs native mapper file.

    * StyleCLIP ``.pt`` (spec §6): ``{"state_dict": {"mapper.*", "decoder.*"}, "opts": dict}``, read
      with ``weights_only``; the ``decoder.*`` generator weights are returned un-built
      (:attr:`LoadedMapper.decoder_state`) for the StyleGAN2 loader;
    * a bare state dict (``.pt`` or ``.safetensors``) with ``course_mapping.*``… keys, with or
      without the ``mapper.`` prefix;
    * cfs native ``.safetensors`` (:func:`save_mapper`): config JSON in the metadata.
    """
    path = check_model_path(path)
    opts: dict[str, Any] = {}
    decoder: dict[str, torch.Tensor] | None = None
    config: LevelsMapperConfig | None = None
    if path.suffix == ".safetensors":
        sd, meta = read_safetensors(path)
        layout = "state-dict"
        if meta.get("format_name") == NATIVE_FORMAT:
            layout = "cfs-native"
            try:
                config = LevelsMapperConfig.from_dict(json.loads(meta["config"]))
            except (KeyError, ValueError, TypeError) as exc:
                raise ModelLoadError(f"{path}: invalid mapper config in metadata ({exc})") from None
    else:
        obj = torch_load_safe(path)
        if not isinstance(obj, Mapping):
            raise ModelLoadError(f"{path}: expected a dict checkpoint, found {type(obj).__name__}")
        layout = "state-dict"
        if "state_dict" in obj:
            layout = "styleclip"
            opts = _plain_opts(obj.get("opts"))
            obj = obj["state_dict"]
        if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise ModelLoadError(f"{path}: 'state_dict' is not a state dict of tensors")
        sd = {str(k): v for k, v in obj.items()}
    if any(k.startswith("mapper.") for k in sd):
        dec = {k[8:]: v for k, v in sd.items() if k.startswith("decoder.")}
        decoder = dec or None
        other = [k for k in sd if not k.startswith(("mapper.", "decoder."))]
        if other:
            raise ModelLoadError(f"{path}: unexpected keys beside mapper.*/decoder.*: {', '.join(other[:5])}")
        sd = {k[7:]: v for k, v in sd.items() if k.startswith("mapper.")}
    elif any(k.startswith("decoder.") for k in sd):
        raise ModelLoadError(f"{path}: a checkpoint with decoder.* keys but no mapper.* keys (not a mapper)")
    mapper = build_mapper(sd, path, opts or None, config).to(device)
    return LoadedMapper(mapper, path, layout, opts, decoder)


def save_mapper(dest: str | os.PathLike[str], mapper: LevelsMapper,
                extra_metadata: Mapping[str, str] | None = None) -> Path:
    """Write cfs' native mapper ``.safetensors`` (un-prefixed keys, config JSON in the metadata)."""
    from safetensors.torch import save_file

    dest = Path(dest)
    if dest.suffix != ".safetensors":
        raise InputError(f"{dest}: native model files end in .safetensors")
    tensors = {k: v.detach().cpu().contiguous() for k, v in mapper.state_dict().items()}
    meta = {"format": "pt", "format_name": NATIVE_FORMAT, "format_version": NATIVE_VERSION,
            "config": mapper.config.to_json()}
    meta.update(extra_metadata or {})
    with atomic_path(dest) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return dest
