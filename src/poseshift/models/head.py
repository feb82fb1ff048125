"""The DeepLabCut / DeeperCut prediction head: one stride-2 deconvolution to stride 8.

Geometry, in one place so that the codec, the trainer and inference agree:

- the backbone maps an H x W image to ceil(H / s) x ceil(W / s) features (timm padding), s
  the backbone stride: 16 (DeepLabCut's and the paper's) or 32 (undilated, see below);
- at s = 32 a learned upsampling (``ConvTranspose2d`` to 256 channels and BatchNorm, as
  Xiao et al.'s "Simple Baselines") first doubles the map to stride 16, where the
  backbone's stride-16 stage joins it through a 1x1 convolution (a feature-pyramid skip,
  Lin et al.), then a ReLU;
- ``ConvTranspose2d(kernel 3, stride 2, padding 1, output_padding 1)`` doubles that exactly,
  so the maps are ``map_size(H, W, s) = (s / 8 * ceil(H / s), s / 8 * ceil(W / s))``. For
  odd sizes this is not ceil(H / 8) (H = 161 gives 22 rows, not 21); the last row or column
  then lies partly outside the image, which is harmless (the predictor pads to a multiple
  of s anyway);
- map cell (i, j) is centred on image pixel ``(x, y) = (j * 8 + 4, i * 8 + 4)``, DeepLabCut's
  ``x = j * stride + stride / 2``; ``ScoremapCodec.cell_centers`` is the one place computing it.

Why stride 32 at all: undilated, ResNet's last stage works on a quarter of the cells, and a
ResNet-50 training image of 448x448 counts 104 instead of 149 GFLOP (upsampling and skip
included), ~1.3x faster on a CPU (benchmarks/train_vs_dlc3.md). Without the skip the
network lost accuracy (17.4 against 7.1 px test error after 20 epochs); with it, 7.6 px.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from poseshift.models.backbones import OUTPUT_STRIDE

STRIDE = OUTPUT_STRIDE // 2  # the deconvolution doubles the stride-16 feature map
UPSAMPLE_CHANNELS = 256  # Simple Baselines' deconvolution width


def map_size(image_h: int, image_w: int, backbone_stride: int = OUTPUT_STRIDE) -> tuple[int, int]:
    """(h, w) of the scoremaps for an ``image_h`` x ``image_w`` input."""
    cells = backbone_stride // STRIDE
    return (
        cells * math.ceil(image_h / backbone_stride),
        cells * math.ceil(image_w / backbone_stride),
    )


class DeconvHead(nn.Module):
    """Per-keypoint scoremap logits (K channels) and locref maps (2K: dx, dy per keypoint).

    Two transposed convolutions on the same features, as in DeeperCut's ``part_pred`` and
    ``locref`` layers; Glorot-uniform weights and zero biases, TF-slim's defaults that
    DeepLabCut trained with.
    """

    def __init__(
        self, in_channels: int, num_keypoints: int, skip_channels: int | None = None
    ) -> None:
        super().__init__()
        self.num_keypoints = num_keypoints
        # No parameters at stride 16, so stride-16 files load as ever.
        self.upsample: nn.Module = nn.Identity()
        self.lateral: nn.Module | None = None
        if skip_channels:  # behind a stride-32 backbone, with its stride-16 stage's output
            deconv = nn.ConvTranspose2d(
                in_channels, UPSAMPLE_CHANNELS, 3, stride=2, padding=1, output_padding=1,
                bias=False,
            )  # fmt: skip
            self.upsample = nn.Sequential(deconv, nn.BatchNorm2d(UPSAMPLE_CHANNELS))
            self.lateral = nn.Sequential(
                nn.Conv2d(skip_channels, UPSAMPLE_CHANNELS, 1, bias=False),
                nn.BatchNorm2d(UPSAMPLE_CHANNELS),
            )
            in_channels = UPSAMPLE_CHANNELS
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

    def forward_maps(self, maps: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The backbone's list of maps (``create_backbone``: the last map, and before it the
        stride-16 skip when the backbone runs at stride 32) -> scoremaps, locref."""
        return self.forward(maps[-1], maps[-2] if len(maps) > 1 else None)

    def forward(
        self, features: torch.Tensor, skip: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, h, w) features -> scoremaps (B, K, 2h, 2w), locref (B, 2K, 2h, 2w); at
        backbone stride 32 (4h, 4w), with ``skip`` the (B, C', 2h, 2w) stride-16 map."""
        if self.lateral is not None:
            if skip is None:
                raise ValueError("a stride-32 head needs the backbone's stride-16 map as skip")
            up, lateral = self.upsample(features), self.lateral(skip)
            # unpadded odd sizes: the skip has a row / column fewer than 2 ceil(H / 32)
            rows, cols = up.shape[-2] - lateral.shape[-2], up.shape[-1] - lateral.shape[-1]
            features = torch.relu(up + F.pad(lateral, (0, cols, 0, rows)))
        return self.scoremap(features), self.locref(features)
