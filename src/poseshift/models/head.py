"""The DeepLabCut / DeeperCut prediction head: one stride-2 deconvolution to stride 8.

Geometry, in one place so that the codec, the trainer and inference agree:

- the backbone maps an H x W image to ceil(H / 16) x ceil(W / 16) features (timm padding);
- ``ConvTranspose2d(kernel 3, stride 2, padding 1, output_padding 1)`` doubles that exactly,
  so the maps are ``map_size(H, W) = (2 * ceil(H / 16), 2 * ceil(W / 16))``. For odd sizes this
  is not ceil(H / 8) (H = 161 gives 22 rows, not 21); the last row or column then lies
  partly outside the image, which is harmless;
- map cell (i, j) is centred on image pixel ``(x, y) = (j * 8 + 4, i * 8 + 4)``, DeepLabCut's
  ``x = j * stride + stride / 2``; ``ScoremapCodec.cell_centers`` is the one place computing it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from poseshift.models.backbones import OUTPUT_STRIDE

STRIDE = OUTPUT_STRIDE // 2  # the deconvolution doubles the stride-16 feature map


def map_size(image_h: int, image_w: int) -> tuple[int, int]:
    """(h, w) of the scoremaps for an ``image_h`` x ``image_w`` input."""
    return 2 * math.ceil(image_h / OUTPUT_STRIDE), 2 * math.ceil(image_w / OUTPUT_STRIDE)


class DeconvHead(nn.Module):
    """Per-keypoint scoremap logits (K channels) and locref maps (2K: dx, dy per keypoint).

    Two transposed convolutions on the same features, as in DeeperCut's ``part_pred`` and
    ``locref`` layers; Glorot-uniform weights and zero biases, TF-slim's defaults that
    DeepLabCut trained with.
    """

    def __init__(self, in_channels: int, num_keypoints: int) -> None:
        super().__init__()
        self.num_keypoints = num_keypoints
        self.scoremap = self._deconv(in_channels, num_keypoints)
        self.locref = self._deconv(in_channels, 2 * num_keypoints)

    @staticmethod
    def _deconv(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
        layer = nn.ConvTranspose2d(
            in_channels, out_channels, kernel_size=3, stride=2, padding=1, output_padding=1
        )
        nn.init.xavier_uniform_(layer.weight)
        assert layer.bias is not None  # bias=True is ConvTranspose2d's default
        nn.init.zeros_(layer.bias)
        return layer

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, h, w) features -> scoremaps (B, K, 2h, 2w), locref (B, 2K, 2h, 2w)."""
        return self.scoremap(features), self.locref(features)
