"""The StyleGAN2 discriminator (rosinality layout, spec §1.9).

Needed to read training snapshots (``d``) and for adversarial training of the demo pack.
Minibatch standard deviation groups samples with a stride (sample b with b ± B/group, …) and
uses the biased variance, as the reference does.
"""

from __future__ import annotations

import torch
from torch import nn

from cfs_core.stylegan2.config import DiscriminatorConfig
from cfs_core.stylegan2.layers import ConvLayer, EqualLinear, ResBlock


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, n_feat: int = 1) -> torch.Tensor:
    """Append ``n_feat`` channels holding the group standard deviation of the features."""
    batch, channel, height, width = x.shape
    group = min(batch, group_size)
    if batch % group:
        raise ValueError(f"batch {batch} is not divisible by the stddev group {group}")
    y = x.view(group, -1, n_feat, channel // n_feat, height, width)
    y = torch.sqrt(y.var(0, unbiased=False) + 1e-8)
    y = y.mean([2, 3, 4], keepdim=True).squeeze(2)
    y = y.repeat(group, 1, height, width)
    return torch.cat([x, y], 1)


class Discriminator(nn.Module):
    """StyleGAN2 residual discriminator; returns logits ``[B, 1]``."""

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        ch, taps = config.channels, config.blur_kernel
        convs: list[nn.Module] = [ConvLayer(3, ch[config.size], 1)]
        in_ch = ch[config.size]
        for i in range(config.log_size, 2, -1):
            out_ch = ch[2 ** (i - 1)]
            convs.append(ResBlock(in_ch, out_ch, taps))
            in_ch = out_ch
        self.convs = nn.Sequential(*convs)
        self.stddev_group, self.stddev_feat = config.stddev_group, config.stddev_feat
        self.final_conv = ConvLayer(in_ch + config.stddev_feat, ch[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(ch[4] * 4 * 4, ch[4], activation=True),
            EqualLinear(ch[4], 1),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.convs(images)
        out = minibatch_stddev(out, self.stddev_group, self.stddev_feat)
        out = self.final_conv(out)
        return self.final_linear(out.flatten(1))
