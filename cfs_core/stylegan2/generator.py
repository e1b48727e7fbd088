"""The StyleGAN2 generator every cfs editing method shares (W, W+ and StyleSpace).

State-dict keys are rosinality's, so ``stylegan2-ffhq-config-f.pt`` (``g_ema``) loads without
renaming (spec §1.2). Maths and latent/noise/StyleSpace conventions follow spec §1.4–§1.7.

Latent spaces (B = batch, D = ``style_dim``, L = ``n_latent``):

* Z ``[B, D]`` → :meth:`Generator.mapping` → W ``[B, D]``;
* W+ ``[B, L, D]``: one w per slot (:meth:`Generator.to_wplus` broadcasts a W code);
* StyleSpace: a list of ``[B, C_i]`` tensors, one per modulated layer, in StyleCLIP's order
  (``conv1, to_rgb1, convs.0, convs.1, to_rgbs.0, convs.2, …``); :attr:`Generator.stylespace`
  describes each entry (layer, channels, resolution, W+ slot, whether it is a ToRGB).

Noise: ``"const"`` uses the stored ``noises.noise_i`` buffers (deterministic), ``"random"``
draws fresh N(0, 1) noise (pass a ``torch.Generator`` for reproducibility), or pass a list of
``num_layers`` tensors of shape [B or 1, 1, r, r].

``forward`` keeps the reference call signature (``g([z])``, ``input_is_latent``, ``truncation``,
``inject_index``, ``randomize_noise``, ``input_is_stylespace``) so reference code ports directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Union

import torch
from torch import nn

from cfs_core.stylegan2.config import GeneratorConfig
from cfs_core.stylegan2.layers import ConstantInput, EqualLinear, ModulatedConv2d, PixelNorm, StyledConv, ToRGB

NoiseSpec = Union[Literal["const", "random"], Sequence[torch.Tensor]]


@dataclass(frozen=True)
class StyleLayer:
    """One StyleSpace entry: where it lives and which W+ slot feeds it."""

    index: int  # position in the StyleSpace list
    name: str  # module path in the state dict, e.g. "convs.2"
    channels: int  # C_in of the modulated conv = length of the style vector
    resolution: int  # output resolution of the layer
    wplus_slot: int  # W+ slot whose w is modulated into this vector
    is_torgb: bool


class Generator(nn.Module):
    """StyleGAN2 generator (rosinality layout), batched, on any device."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        ch, sd, taps = config.channels, config.style_dim, config.blur_kernel
        self.size, self.style_dim = config.size, sd
        self.n_latent, self.num_layers = config.n_latent, config.num_layers

        self.style = nn.Sequential(
            PixelNorm(), *(EqualLinear(sd, sd, lr_mul=config.lr_mlp, activation=True) for _ in range(config.n_mlp))
        )
        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], 3, sd, blur_kernel=taps)
        self.to_rgb1 = ToRGB(ch[4], sd, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_ch = ch[4]
        for res in config.resolutions[1:]:
            out_ch = ch[res]
            self.convs.append(StyledConv(in_ch, out_ch, 3, sd, upsample=True, blur_kernel=taps))
            self.convs.append(StyledConv(out_ch, out_ch, 3, sd, blur_kernel=taps))
            self.to_rgbs.append(ToRGB(out_ch, sd, blur_kernel=taps))
            in_ch = out_ch
        self.noises = nn.Module()
        for i in range(self.num_layers):
            res = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, res, res))
        # W-space average stored with converted checkpoints (TF dlatent_avg); not in the state dict.
        self.register_buffer("latent_avg", None, persistent=False)
        self.stylespace: list[StyleLayer] = self._stylespace_layout()

    # ------------------------------------------------------------------ layout
    def _modulated_layers(self) -> list[tuple[str, nn.Module, int]]:
        """(name, module with ``.conv``, output resolution) in StyleSpace order."""
        layers: list[tuple[str, nn.Module, int]] = [("conv1", self.conv1, 4), ("to_rgb1", self.to_rgb1, 4)]
        for k, res in enumerate(self.config.resolutions[1:]):
            layers += [
                (f"convs.{2 * k}", self.convs[2 * k], res),
                (f"convs.{2 * k + 1}", self.convs[2 * k + 1], res),
                (f"to_rgbs.{k}", self.to_rgbs[k], res),
            ]
        return layers

    def _stylespace_layout(self) -> list[StyleLayer]:
        out = []
        for i, (name, module, res) in enumerate(self._modulated_layers()):
            slot = 0 if i == 0 else (i + 1) // 3 * 2 - 1 + (i + 1) % 3  # conv1←0, to_rgb1←1, then 2k+1, 2k+2, 2k+3
            conv: ModulatedConv2d = module.conv  # type: ignore[assignment]
            out.append(StyleLayer(i, name, conv.in_channel, res, slot, name.startswith("to_rgb")))
        return out

    @property
    def stylespace_dims(self) -> list[int]:
        """Channels of every StyleSpace entry (26 entries, 9,088 channels at 1024 config-f)."""
        return [layer.channels for layer in self.stylespace]

    def set_fused_modconv(self, fused: bool) -> None:
        """Choose grouped-conv (reference) or activation-scaling modulated convolutions."""
        for module in self.modules():
            if isinstance(module, ModulatedConv2d):
                module.fused = fused

    # ------------------------------------------------------------------ latents
    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """Map z ``[B, D]`` to w ``[B, D]``."""
        return self.style(z)

    get_latent = mapping

    @torch.no_grad()
    def mean_latent(self, n: int = 4096, seed: int = 0) -> torch.Tensor:
        """Mean of the mapping over ``n`` seeded z samples, ``[1, D]``."""
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.style_dim, generator=gen).to(self.input.input.device)
        return self.style(z).mean(0, keepdim=True)

    def truncation_center(self) -> torch.Tensor:
        """The stored ``latent_avg`` ``[1, D]`` if the checkpoint had one, else :meth:`mean_latent`."""
        if self.latent_avg is not None:
            return self.latent_avg.reshape(1, -1)
        return self.mean_latent()

    @staticmethod
    def truncate(w: torch.Tensor, psi: float, center: torch.Tensor) -> torch.Tensor:
        """``center + psi * (w - center)`` for W ``[B, D]`` or W+ ``[B, L, D]`` codes."""
        if center.ndim == 2 and w.ndim == 3:
            center = center.unsqueeze(1)
        return center + psi * (w - center)

    def to_wplus(self, w: torch.Tensor) -> torch.Tensor:
        """Broadcast W ``[B, D]`` to W+ ``[B, L, D]``; W+ passes through (shape-checked)."""
        if w.ndim == 2:
            return w.unsqueeze(1).repeat(1, self.n_latent, 1)
        if w.ndim != 3 or w.shape[1:] != (self.n_latent, self.style_dim):
            raise ValueError(f"expected W+ of shape [B, {self.n_latent}, {self.style_dim}], got {tuple(w.shape)}")
        return w

    def mix(self, first: torch.Tensor, second: torch.Tensor, inject_index: int) -> torch.Tensor:
        """Style mixing: slots ``< inject_index`` from ``first``, the rest from ``second``."""
        if not 0 < inject_index < self.n_latent:
            raise ValueError(f"inject_index must be in 1..{self.n_latent - 1}, got {inject_index}")
        a, b = self.to_wplus(first), self.to_wplus(second)
        return torch.cat([a[:, :inject_index], b[:, inject_index:]], dim=1)

    def styles(self, wplus: torch.Tensor) -> list[torch.Tensor]:
        """StyleSpace vectors ``[B, C_i]`` of a W+ (or W) code, in StyleSpace order."""
        wplus = self.to_wplus(wplus)
        modules = self._modulated_layers()
        return [m.conv.modulation(wplus[:, layer.wplus_slot]) for layer, (_, m, _) in zip(self.stylespace, modules)]

    # ------------------------------------------------------------------ noise
    def make_noise(
        self, batch: int = 1, generator: torch.Generator | None = None, device: torch.device | None = None,
    ) -> list[torch.Tensor]:
        """Fresh N(0, 1) noise maps ``[batch, 1, r, r]`` for every layer (seedable)."""
        device = device or self.input.input.device
        out = []
        for i in range(self.num_layers):
            res = 2 ** ((i + 5) // 2)
            out.append(torch.randn(batch, 1, res, res, generator=generator, device=generator.device if generator else device).to(device))
        return out

    def _resolve_noise(self, noise: NoiseSpec | None, batch: int, generator: torch.Generator | None) -> list[torch.Tensor]:
        if noise is None or (isinstance(noise, str) and noise == "const"):
            return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        if isinstance(noise, str):
            if noise != "random":
                raise ValueError(f"noise must be 'const', 'random' or a list of tensors, got {noise!r}")
            return self.make_noise(batch, generator)
        noise = list(noise)
        if len(noise) != self.num_layers:
            raise ValueError(f"expected {self.num_layers} noise maps, got {len(noise)}")
        return [n if n is not None else getattr(self.noises, f"noise_{i}") for i, n in enumerate(noise)]

    # ------------------------------------------------------------------ synthesis
    def synthesis_from_styles(
        self, styles: Sequence[torch.Tensor], noise: NoiseSpec | None = "const", generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Render StyleSpace vectors (``[B, C_i]`` or ``[B, 1, C_i, 1, 1]``) to images ``[B, 3, H, W]``."""
        if len(styles) != len(self.stylespace):
            raise ValueError(f"expected {len(self.stylespace)} StyleSpace vectors, got {len(styles)}")
        s = [t.reshape(t.shape[0], -1) for t in styles]
        batch = s[0].shape[0]
        noises = self._resolve_noise(noise, batch, generator)
        x = self.conv1(self.input(batch), s[0], noises[0])
        rgb = self.to_rgb1(x, s[1])
        for k in range(len(self.to_rgbs)):
            x = self.convs[2 * k](x, s[2 + 3 * k], noises[1 + 2 * k])
            x = self.convs[2 * k + 1](x, s[3 + 3 * k], noises[2 + 2 * k])
            rgb = self.to_rgbs[k](x, s[4 + 3 * k], rgb)
        return rgb

    def synthesis(self, wplus: torch.Tensor, noise: NoiseSpec | None = "const", generator: torch.Generator | None = None) -> torch.Tensor:
        """Render W ``[B, D]`` or W+ ``[B, L, D]`` codes to images ``[B, 3, H, W]`` (≈[-1, 1])."""
        return self.synthesis_from_styles(self.styles(wplus), noise, generator)

    @torch.no_grad()
    def sample(
        self, n: int, seed: int = 0, truncation: float = 1.0, noise: NoiseSpec = "const", batch_size: int = 8,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Seeded samples: returns (images ``[n, 3, H, W]``, W+ codes ``[n, L, D]``)."""
        device = self.input.input.device
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.style_dim, generator=gen).to(device)
        center = self.truncation_center() if truncation != 1.0 else None
        images, codes = [], []
        for chunk in z.split(batch_size):
            w = self.mapping(chunk)
            if center is not None:
                w = self.truncate(w, truncation, center)
            wplus = self.to_wplus(w)
            images.append(self.synthesis(wplus, noise, gen if noise == "random" else None))
            codes.append(wplus)
        return torch.cat(images), torch.cat(codes)

    # ------------------------------------------------------------------ reference API
    def forward(  # noqa: PLR0913 - mirrors the reference signature
        self,
        styles: Sequence[torch.Tensor] | Sequence[Sequence[torch.Tensor]],
        return_latents: bool = False,
        inject_index: int | None = None,
        truncation: float = 1.0,
        truncation_latent: torch.Tensor | None = None,
        input_is_latent: bool = False,
        noise: Sequence[torch.Tensor] | None = None,
        randomize_noise: bool = True,
        input_is_stylespace: bool = False,
        return_styles: bool = False,
    ) -> tuple[torch.Tensor, ...]:
        """Reference-compatible call: ``image, latent = g([z])``.

        Returns ``(image, wplus or None)``; with ``return_styles=True`` a third value, the
        StyleSpace list in StyleCLIP's ``[B, 1, C, 1, 1]`` form. Without ``inject_index`` two
        styles are mixed at a random index (drawn from torch's global RNG).
        """
        noise_spec: NoiseSpec | None = noise if noise is not None else ("random" if randomize_noise else "const")
        if input_is_stylespace:
            s = list(styles[0])  # type: ignore[arg-type]
            image = self.synthesis_from_styles(s, noise_spec)
            return (image, None, [t.reshape(t.shape[0], 1, -1, 1, 1) for t in s]) if return_styles else (image, None)
        ws = [t if input_is_latent else self.mapping(t) for t in styles]  # type: ignore[arg-type]
        if truncation < 1:
            center = truncation_latent if truncation_latent is not None else self.truncation_center()
            ws = [self.truncate(w, truncation, center) for w in ws]
        if len(ws) == 1:
            wplus = self.to_wplus(ws[0])
        else:
            if inject_index is None:
                inject_index = int(torch.randint(1, self.n_latent, ()).item())
            wplus = self.mix(ws[0], ws[1], inject_index)
        s = self.styles(wplus)
        image = self.synthesis_from_styles(s, noise_spec)
        latent = wplus if return_latents else None
        if return_styles:
            return image, latent, [t.reshape(t.shape[0], 1, -1, 1, 1) for t in s]
        return image, latent
