"""StyleGAN2 building blocks with rosinality's parameter names (spec §1.2, §1.4).

Attribute names are part of the checkpoint format: ``EqualLinear.weight/bias``,
``ModulatedConv2d.weight`` (5-D, leading 1) ``.modulation`` ``.blur.kernel``,
``StyledConv.conv/noise/activate``, ``ToRGB.conv/bias/upsample.kernel``, ``ConstantInput.input``,
``ConvLayer`` as a ``Sequential`` (``[Blur,] EqualConv2d, FusedLeakyReLU``), ``ResBlock.conv1/conv2/skip``.

Modulated convolutions take the **StyleSpace vector** ``s`` ([B, C_in], the modulation output)
rather than ``w``: the generator computes ``s`` once per layer, so W, W+ and StyleSpace inputs
all run through the same code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cfs_core.stylegan2.ops import fused_leaky_relu, make_kernel, upfirdn2d


class PixelNorm(nn.Module):
    """``x * rsqrt(mean(x**2, dim=1) + 1e-8)``: normalises over dim 1, whatever it is."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate; runtime weight ``W * lr_mul / sqrt(in)``."""

    def __init__(
        self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0,
        lr_mul: float = 1.0, activation: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias)


class EqualConv2d(nn.Module):
    """Conv2d with equalised learning rate (discriminator only)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_ch * kernel_size**2)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class FusedLeakyReLU(nn.Module):
    """Bias + leaky ReLU (0.2) + ×sqrt(2); the bias is this module's ``bias`` parameter."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class ScaledLeakyReLU(nn.Module):
    """Leaky ReLU (0.2) × sqrt(2) without a bias (no keys)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x)


class Blur(nn.Module):
    """FIR filter with padding; ``kernel`` is a persistent (4, 4) buffer, a constant."""

    def __init__(self, taps: Sequence[float], pad: tuple[int, int], gain: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel(taps, gain=gain))
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """×2 FIR upsampling of the skip RGB (``kernel`` buffer is the taps' kernel × 4)."""

    def __init__(self, taps: Sequence[float], factor: int = 2) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel(taps, gain=factor**2))
        self.factor = factor
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Modulated (and optionally demodulated / ×2 upsampling) convolution.

    ``forward(x, s)`` takes the StyleSpace vector ``s`` = ``self.modulation(w)`` ([B, C_in]).
    ``fused=True`` (default) uses per-sample weights and a grouped convolution, as the reference
    does; ``False`` scales activations instead (mathematically identical; measured slower on CPU
    with ``cfs bench generator --scaled``).
    """

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, demodulate: bool = True,
        upsample: bool = False, blur_kernel: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_ch, out_ch, kernel_size
        self.upsample = upsample
        self.demodulate = demodulate
        self.fused = True
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), gain=factor**2)
        self.scale = 1 / math.sqrt(in_ch * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return self._forward_fused(x, s) if self.fused else self._forward_scaled(x, s)

    def _forward_fused(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        b, cin, h, w = x.shape
        cout, k = self.out_channel, self.kernel_size
        weight = self.scale * self.weight * s.view(b, 1, cin, 1, 1)  # [B, Cout, Cin, k, k]
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(b, cout, 1, 1, 1)
        x = x.reshape(1, b * cin, h, w)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(b * cin, cout, k, k)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=b)
            return self.blur(out.view(b, cout, out.shape[2], out.shape[3]))
        out = F.conv2d(x, weight.view(b * cout, cin, k, k), padding=self.padding, groups=b)
        return out.view(b, cout, h, w)

    def _forward_scaled(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        b, cin = x.shape[:2]
        weight = self.scale * self.weight[0]  # [Cout, Cin, k, k]
        x = x * s.view(b, cin, 1, 1)
        if self.upsample:
            out = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), padding=0, stride=2))
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            demod = torch.rsqrt(s.pow(2) @ weight.pow(2).sum([2, 3]).t() + 1e-8)  # [B, Cout]
            out = out * demod.view(b, self.out_channel, 1, 1)
        return out


class NoiseInjection(nn.Module):
    """``x + weight * noise``; ``noise`` is [B or 1, 1, H, W]."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + self.weight * noise


class ConstantInput(nn.Module):
    """The learned 4×4 constant the synthesis starts from."""

    def __init__(self, channels: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)


class StyledConv(nn.Module):
    """Modulated conv → noise → fused leaky ReLU (the bias lives in ``activate.bias``)."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, upsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, kernel_size, style_dim, upsample=upsample, blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_ch)

    def forward(self, x: torch.Tensor, s: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, s), noise))


class ToRGB(nn.Module):
    """1×1 modulated conv without demodulation, + bias, + the upsampled previous RGB."""

    def __init__(self, in_ch: int, style_dim: int, upsample: bool = True, blur_kernel: Sequence[float] = (1, 3, 3, 1)) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_ch, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, s: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, s) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class ConvLayer(nn.Sequential):
    """Discriminator conv: ``[Blur,] EqualConv2d, FusedLeakyReLU|ScaledLeakyReLU`` (Sequential keys)."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, downsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1), bias: bool = True, activate: bool = True,
    ) -> None:
        layers: list[nn.Module] = []
        stride, padding = 1, kernel_size // 2
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        layers.append(EqualConv2d(in_ch, out_ch, kernel_size, stride, padding, bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_ch) if bias else ScaledLeakyReLU())
        super().__init__(*layers)


class ResBlock(nn.Module):
    """Discriminator residual block: ``(conv2(conv1(x)) + skip(x)) / sqrt(2)``, ×½ resolution."""

    def __init__(self, in_ch: int, out_ch: int, blur_kernel: Sequence[float] = (1, 3, 3, 1)) -> None:
        super().__init__()
        self.conv1 = ConvLayer(in_ch, in_ch, 3, blur_kernel=blur_kernel)
        self.conv2 = ConvLayer(in_ch, out_ch, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = ConvLayer(in_ch, out_ch, 1, downsample=True, activate=False, bias=False, blur_kernel=blur_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)
