"""MobileNetV2 and EfficientNet feature maps as DeepLabCut-TF built them (``features: deeplabcut``).

timm makes output stride 16 by removing the last stride-2 and dilating every later layer.
DeepLabCut-TF changed that stride to 1 and did not dilate (``V2_DEF``'s 160-channel layer,
"WE changed this stride"; EfficientNet's ``r4_k5_s11_e6_i112_o192`` block string), and its
MobileNetV2 head reads the pretrained 1x1 convolution to 1280 channels (+ BatchNorm + ReLU6,
``finegrain_classification_mode``: 1280 at every width) where timm's feature map is the last
block's (320 x width channels). docs/protocol.md, rows 26-27. ResNets are the same either
way (slim's ``output_stride=16`` dilates, as timm does).

The modules keep timm's names (``conv_stem``, ``blocks``, ``conv_head``, ``bn2``), so
ImageNet weights load by the same keys, the 1x1 layer's included.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

FEATURES = ("timm", "deeplabcut")


class _Channels:
    """The two ``feature_info`` queries poseshift makes of a backbone."""

    def __init__(self, channels: int, module: str) -> None:
        self._channels, self._module = channels, module

    def channels(self) -> list[int]:
        return [self._channels]

    def module_name(self) -> list[str]:
        return [self._module]


class DeepLabCutFeatures(nn.Module):
    """A timm MobileNetV2 / EfficientNet at stride 16 without dilation; (B, 3, H, W) to a
    one-element list of (B, C, ceil(H/16), ceil(W/16))."""

    def __init__(self, net: Any, with_head_conv: bool) -> None:  # a timm EfficientNet
        super().__init__()
        self.conv_stem, self.bn1 = net.conv_stem, net.bn1
        self.blocks: nn.Sequential = net.blocks
        strided = [stage[0] for stage in self.blocks if _first_conv(stage[0]).stride[0] == 2]
        # The last stride 2 -> 1, nothing dilated (TF "SAME" convolutions pad by their stride
        # at run time).
        _first_conv(strided[-1]).stride = (1, 1)
        self.with_head_conv = with_head_conv
        if with_head_conv:
            self.conv_head, self.bn2 = net.conv_head, net.bn2
            self.feature_info = _Channels(net.conv_head.out_channels, "bn2")
        else:
            last = len(self.blocks) - 1
            self.feature_info = _Channels(net.feature_info[-1]["num_chs"], f"blocks.{last}")

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.blocks(self.bn1(self.conv_stem(images)))
        if self.with_head_conv:
            x = self.bn2(self.conv_head(x))
        return [x]


def _first_conv(block: Any) -> nn.Conv2d:
    """The convolution that strides in a timm inverted-residual (or first) block."""
    return getattr(block, "conv_dw", None) or block.conv_pw


def deeplabcut_features(timm_name: str, family: str, **kwargs: Any) -> DeepLabCutFeatures:
    """The DeepLabCut-TF feature network of a timm MobileNetV2 / EfficientNet."""
    import timm

    net = timm.create_model(timm_name, pretrained=False, num_classes=0, **kwargs)
    return DeepLabCutFeatures(net, with_head_conv=family == "mobilenetv2")
