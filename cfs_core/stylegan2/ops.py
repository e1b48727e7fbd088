"""Pure-PyTorch StyleGAN2 ops: FIR up/down-sampling and the fused bias + leaky ReLU.

Nothing here is compiled; the same code runs on CPU and CUDA. The maths follows the reference
``upfirdn2d_native`` and ``fused_leaky_relu`` of rosinality/stylegan2-pytorch (spec §1.4, §1.8):

* ``upfirdn2d``: zero-insertion upsampling, padding (negative pads crop), a **true convolution**
  with the FIR kernel (the kernel is flipped), then downsampling by striding.
* ``fused_leaky_relu``: ``leaky_relu(x + bias, 0.2) * sqrt(2)`` with the bias on dim 1, or on the
  last dim for 3-D inputs (StyleCLIP's behaviour, which the latent mapper relies on).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)


def make_kernel(taps: Sequence[float], *, gain: float = 1.0, device: torch.device | str | None = None) -> torch.Tensor:
    """Return the normalised 2-D FIR kernel of 1-D ``taps`` (outer product, sum 1) times ``gain``.

    ``gain`` is ``factor**2`` on up-sampling paths (4 for the usual ×2), 1 elsewhere.
    """
    k = torch.tensor(list(taps), dtype=torch.float32, device=device)
    k2 = k[None, :] * k[:, None] if k.ndim == 1 else k
    return k2 / k2.sum() * gain


def upfirdn2d(
    x: torch.Tensor,
    kernel: torch.Tensor,
    up: int = 1,
    down: int = 1,
    pad: tuple[int, int] = (0, 0),
) -> torch.Tensor:
    """Upsample, pad, FIR-filter and downsample ``x`` ([N, C, H, W]) with a 2-D ``kernel``.

    ``pad`` = (pad0, pad1) is applied to both axes (pad0 before, pad1 after). The output size is
    ``(in*up + pad0 + pad1 - k) // down + 1`` per axis. Works on any device, differentiable.
    """
    n, c, h, w = x.shape
    kh, kw = kernel.shape
    pad0, pad1 = pad
    if up > 1:
        # Zero insertion: input samples land on even positions (reference layout).
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, (max(pad0, 0), max(pad1, 0), max(pad0, 0), max(pad1, 0)))
    if pad0 < 0 or pad1 < 0:
        hh, ww = x.shape[2], x.shape[3]
        x = x[:, :, max(-pad0, 0) : hh - max(-pad1, 0), max(-pad0, 0) : ww - max(-pad1, 0)]
    weight = torch.flip(kernel, (0, 1)).to(dtype=x.dtype, device=x.device)
    weight = weight.view(1, 1, kh, kw).expand(c, 1, kh, kw)
    x = F.conv2d(x, weight, groups=c, stride=down)
    return x


def fused_leaky_relu(
    x: torch.Tensor,
    bias: torch.Tensor | None = None,
    negative_slope: float = 0.2,
    scale: float = SQRT2,
) -> torch.Tensor:
    """``leaky_relu(x + bias, negative_slope) * scale``.

    The bias is added along dim 1 for 2-D and 4-D inputs, along the last dim for 3-D inputs
    (StyleCLIP's fused op; [B, L, C] latent slices in the latent mapper).
    """
    if bias is not None:
        if x.ndim == 3:
            x = x + bias.view(1, 1, -1)
        else:
            x = x + bias.view(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(x, negative_slope) * scale
