"""The backbone table: the paper's networks (and EfficientNets), all at output stride 16.

One plain dict, ``BACKBONES``, maps a poseshift name to its timm architecture, the ImageNet
weights ``init="imagenet"`` expects (with their top-1 and where that number comes from) and
the channels of the stride-16 feature map. Backbones come from
``timm.create_model(arch, features_only=True, out_indices=(-1,), output_stride=16)``: timm
dilates ResNet's last stage and turns the last stride-2 depthwise convolution of
MobileNetV2 / EfficientNet into stride 1 with dilation 2 afterwards, which is how the paper
made both families output stride 16 (Methods 5.2). With timm's padding the feature map of an
H x W image is ceil(H / 16) x ceil(W / 16); tests check this with real forward passes.

Weights: timm has no ImageNet weights for MobileNetV2 0.35 / 0.75, so those two expect the
width-multiplier checkpoints of ``d-li14/mobilenetv2.pytorch`` (import them with
``poseshift weights import``). timm has no ImageNet-1k-only EfficientNet-B5 / B6 weights for
its PyTorch-padded architecture; those two expect torchvision's (ported from the TensorFlow
originals, BatchNorm eps 1e-3, which the build matches).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from poseshift.errors import PoseshiftError

OUTPUT_STRIDE = 16
_TIMM_CSV = "timm results/results-imagenet.csv"
_HF = "https://huggingface.co/timm/"
_DLI14 = "https://github.com/d-li14/mobilenetv2.pytorch/raw/master/pretrained/"
_TV = "https://download.pytorch.org/models/"


@dataclass(frozen=True)
class Backbone:
    """One row of the table. ``top1`` is for the weights named by ``weights_url``."""

    name: str
    timm_name: str  # timm architecture
    timm_tag: str | None  # timm pretrained tag fetched for init="imagenet"; None: import only
    top1: float  # ImageNet-1k top-1 (%) of the expected weights
    top1_source: str
    weights_url: str  # where the expected weights are published
    channels: int  # channels of the stride-16 feature map
    # The paper's value (its TF-slim weights), where it gives one: Methods 5.2, "modulates
    # the ImageNet accuracy from 60.3% to 71.8%" for MobileNetV2 0.35 ... 1.0.
    paper_top1: float | None = None
    timm_kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def timm_model_name(self) -> str:
        """``arch.tag`` when timm has the weights, so the pretrained config (mean/std) matches."""
        return f"{self.timm_name}.{self.timm_tag}" if self.timm_tag else self.timm_name


def _timm(name: str, tag: str, top1: float, channels: int, paper: float | None = None) -> Backbone:
    url = f"{_HF}{name}.{tag}/resolve/main/model.safetensors"
    return Backbone(name, name, tag, top1, f"{_TIMM_CSV} ({name}.{tag})", url, channels, paper)


def _dli14(
    name: str, width: str, file: str, top1: float, channels: int, paper: float | None = None
) -> Backbone:
    source = f"d-li14/mobilenetv2.pytorch README (MobileNetV2 {width})"
    return Backbone(name, name, None, top1, source, f"{_DLI14}{file}", channels, paper)


def _torchvision(name: str, file: str, top1: float, channels: int) -> Backbone:
    source = f"torchvision docs ({name} IMAGENET1K_V1)"
    return Backbone(
        name, name, None, top1, source, f"{_TV}{file}", channels, timm_kwargs=(("bn_eps", 1e-3),)
    )


BACKBONES: dict[str, Backbone] = {
    b.name: b
    for b in (
        _dli14("mobilenetv2_035", "0.35", "mobilenetv2_0.35-b2e15951.pth", 60.092, 112, 60.3),
        _timm("mobilenetv2_050", "lamb_in1k", 65.950, 160),
        _dli14("mobilenetv2_075", "0.75", "mobilenetv2_0.75-dace9791.pth", 69.952, 240),
        _timm("mobilenetv2_100", "ra_in1k", 72.976, 320, 71.8),
        _timm("resnet50", "tv_in1k", 76.130, 2048),
        _timm("resnet101", "tv_in1k", 77.376, 2048),
        _timm("efficientnet_b0", "ra_in1k", 77.694, 320),
        _timm("efficientnet_b1", "ft_in1k", 78.800, 320),
        _timm("efficientnet_b2", "ra_in1k", 80.610, 352),
        _timm("efficientnet_b3", "ra2_in1k", 82.242, 384),
        _timm("efficientnet_b4", "ra2_in1k", 83.414, 448),
        _torchvision("efficientnet_b5", "efficientnet_b5_lukemelas-1a07897c.pth", 83.444, 512),
        _torchvision("efficientnet_b6", "efficientnet_b6_lukemelas-24a108a5.pth", 84.008, 576),
    )
}


def get_backbone(name: str) -> Backbone:
    """The table row for ``name``; an unknown name is a one-line error listing valid ones."""
    try:
        return BACKBONES[name]
    except KeyError:
        valid = ", ".join(BACKBONES)
        raise PoseshiftError(f"unknown backbone {name!r}; valid names: {valid}") from None


def create_backbone(name: str):
    """A randomly initialised timm feature extractor for ``name`` at output stride 16.

    Returns a module mapping (B, 3, H, W) to a one-element list holding the
    (B, channels, ceil(H/16), ceil(W/16)) feature map. Weights are loaded separately
    (``poseshift.models.weights``) so that no call here touches the network.
    """
    import timm

    entry = get_backbone(name)
    return timm.create_model(
        entry.timm_model_name,
        pretrained=False,
        features_only=True,
        out_indices=(-1,),
        output_stride=OUTPUT_STRIDE,
        **dict(entry.timm_kwargs),
    )


@functools.cache
def backbone_cost(name: str, height: int = 162, width: int = 288) -> tuple[int, float]:
    """(parameters, GFLOPs) of the backbone on one ``height`` x ``width`` image.

    Counted on the meta device (shapes only, no arithmetic), so the whole table takes about
    two seconds; GFLOPs are torch's FlopCounterMode count (2 per multiply-add) / 1e9.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = create_backbone(name).eval()
        image = torch.empty(1, 3, height, width)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(image)
    params = sum(p.numel() for p in model.parameters())
    return params, counter.get_total_flops() / 1e9
