"""The pose network: a stride-16 (or undilated stride-32) backbone plus the DeepLabCut
deconvolution head, whose maps are at stride 8 either way (``poseshift.models.head``).

A checkpoint written by ``save_posenet`` is self-describing: it stores the backbone name,
the number of keypoints and the ``WeightsOrigin`` the network was built for (padding,
BatchNorm epsilon, input normalization, the top-1 of the weights it started from) next to
the weights, and with them the codec that turns its maps into keypoints and the scale its
inputs are resized by. ``read_snapshot(path)`` needs nothing else, so every consumer
(evaluation, video analysis, export) preprocesses and decodes the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from poseshift.errors import PoseshiftError
from poseshift.fsutil import write_atomic
from poseshift.models.backbones import (
    BACKBONE_STRIDES,
    OUTPUT_STRIDE,
    create_backbone,
    get_backbone,
)
from poseshift.models.codec import ScoremapCodec
from poseshift.models.head import STRIDE, DeconvHead
from poseshift.models.image_norm import normalize_per_image
from poseshift.models.origin import WeightsOrigin, config_origin

CHECKPOINT_FORMAT = "poseshift-posenet-1"


class PoseNet(nn.Module):
    """Backbone + head. ``forward`` takes normalized images (see ``normalize``).

    Returns ``{"scoremaps": (B, K, h, w) logits, "locref": (B, 2K, h, w)}`` with
    ``(h, w) = head.map_size(H, W, backbone_stride)``; locref channels 2k and 2k+1 are dx and
    dy of keypoint k. Inputs should be a multiple of ``backbone_stride`` (the predictor pads).
    """

    stride = STRIDE

    def __init__(
        self,
        backbone: str,
        num_keypoints: int,
        origin: WeightsOrigin | None = None,
        features: str = "timm",
        backbone_stride: int = OUTPUT_STRIDE,
    ) -> None:
        super().__init__()
        if num_keypoints < 1:
            raise PoseshiftError(f"a pose network needs at least one keypoint, got {num_keypoints}")
        entry = get_backbone(backbone)
        self.backbone_name = entry.name
        self.num_keypoints = num_keypoints
        self.origin = origin or entry.origin
        self.features = features  # "timm" | "deeplabcut" (``create_backbone``)
        self.backbone_stride = backbone_stride  # what inputs are padded to a multiple of
        self.backbone = create_backbone(backbone, self.origin, features, backbone_stride)
        channels = self.backbone.feature_info.channels()
        skip = channels[-2] if backbone_stride > OUTPUT_STRIDE else None
        self.head = DeconvHead(channels[-1], num_keypoints, skip_channels=skip)
        self.mean = tuple(float(v) for v in self.origin.mean)
        self.std = tuple(float(v) for v in self.origin.std)
        # On the network's device, so normalizing costs no host-to-device copy per batch;
        # not saved (the config holds them).
        self.pixel_mean: torch.Tensor
        self.pixel_std: torch.Tensor
        self.register_buffer("pixel_mean", torch.tensor(self.mean).view(3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(self.std).view(3, 1, 1), persistent=False)
        self.per_image_statistics = False

    def normalize_per_image(self) -> PoseNet:
        """BatchNorm by each image's own statistics from now on, in training and at
        inference (DeepLabCut-TF's MobileNetV2s; ``poseshift.models.image_norm``)."""
        normalize_per_image(self.backbone)
        self.per_image_statistics = True
        return self

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """(..., 3, H, W) uint8 images, or floats in [0, 1], to the backbone's input scale.

        The one input normalization: training and every prediction path use it.
        """
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        return (x - self.pixel_mean) / self.pixel_std

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        scoremaps, locref = self.head.forward_maps(self.backbone(images))
        return {"scoremaps": scoremaps, "locref": locref}

    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild this network (weights aside)."""
        return {
            "backbone": self.backbone_name,
            "num_keypoints": self.num_keypoints,
            "mean": list(self.mean),
            "std": list(self.std),
            "stride": self.stride,
            "origin": self.origin.to_dict(),
            "features": self.features,
            "backbone_stride": self.backbone_stride,
            "batchnorm_statistics": "per_image" if self.per_image_statistics else "running",
        }


def build_posenet(
    backbone: str,
    num_keypoints: int,
    init: str = "scratch",
    weights: str | os.PathLike[str] | None = None,
    features: str = "timm",
    backbone_stride: int = OUTPUT_STRIDE,
) -> PoseNet:
    """A PoseNet whose backbone starts from ``init``: "imagenet", "scratch" or a weights file.

    "imagenet" looks for weights in the order documented in ``poseshift.models.weights_lookup``
    (``weights`` first, if given); a file path is read in any format ``weights`` reads. The
    network is built for the weights' origin (from scratch: that of the backbone's expected
    weights, so a scratch twin is the same network) and with ``features`` (``"timm"`` or
    ``"deeplabcut"``, see ``create_backbone``) at ``backbone_stride`` (16, or 32 undilated:
    the same weights). The head always starts fresh.
    """
    from poseshift.models.weights import load_backbone_weights, read_weights
    from poseshift.models.weights_lookup import locate_imagenet_weights

    if init == "scratch":
        if weights is not None:
            raise PoseshiftError(
                f"weights={weights} only applies to init='imagenet', not 'scratch'"
            )
        return PoseNet(backbone, num_keypoints, features=features, backbone_stride=backbone_stride)
    if init == "imagenet":
        path = locate_imagenet_weights(backbone, weights)
    elif weights is not None:
        raise PoseshiftError(f"weights={weights} only applies to init='imagenet', not {init!r}")
    elif not Path(init).exists():
        raise PoseshiftError(
            f"init must be 'imagenet', 'scratch' or a weights file; {init} is none of these"
        )
    else:
        path = Path(init)
    read = read_weights(path, backbone)
    model = PoseNet(backbone, num_keypoints, read.origin, features, backbone_stride)
    load_backbone_weights(model.backbone, read, model.backbone_name)
    return model


def posenet_from_config(config: dict[str, Any], where: str) -> PoseNet:
    """An untrained network of the shape and conventions a checkpoint config describes."""
    origin = config_origin(config, where)
    features = config.get("features", "timm")  # older files: timm's feature network
    stride = config.get("backbone_stride", OUTPUT_STRIDE)  # older files: stride 16
    if not isinstance(stride, int) or stride not in BACKBONE_STRIDES:
        raise PoseshiftError(f"{where}: unknown backbone_stride {stride!r}")
    model = PoseNet(config["backbone"], config["num_keypoints"], origin, features, stride)
    statistics = config.get("batchnorm_statistics", "running")  # older files: running
    if statistics not in ("running", "per_image"):
        raise PoseshiftError(f"{where}: unknown batchnorm_statistics {statistics!r}")
    return model.normalize_per_image() if statistics == "per_image" else model


def load_weights(
    model: PoseNet,
    state_dict: dict,
    path: str | os.PathLike[str],
    *,
    fix: str = "train its run again in a new directory",
) -> None:
    """Load ``path``'s weights into ``model``; weights of another shape are a one-line error."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:  # missing, unexpected or misshapen tensors
        lines = str(exc).splitlines()  # a heading, then one line per kind of mismatch
        detail = lines[1].strip() if len(lines) > 1 else lines[0]
        detail = detail if len(detail) <= 160 else detail[:157] + "..."
        raise PoseshiftError(
            f"{path}: its weights do not fit the network its config describes ({detail}); "
            f"it was written by another poseshift version or altered: {fix}"
        ) from None


@dataclass(frozen=True)
class Snapshot:
    """A trained network with what it takes to use it: its codec and its input scale."""

    model: PoseNet
    codec: ScoremapCodec
    input_scale: float  # frames are resized by this before the network (training global_scale)


def save_posenet(
    model: PoseNet,
    path: str | os.PathLike[str],
    *,
    codec: ScoremapCodec | None = None,
    input_scale: float = 1.0,
) -> Path:
    """Write config, codec, input scale and weights atomically (never half a checkpoint)."""
    codec = codec or ScoremapCodec(model.stride)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": model.config(),
        "codec": {"pos_dist_thresh": codec.pos_dist_thresh, "locref_stdev": codec.locref_stdev},
        "input_scale": float(input_scale),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    return write_atomic(path, lambda tmp: torch.save(payload, tmp))


def _read_payload(path: Path, map_location: str | torch.device) -> dict:
    if not path.is_file():
        raise PoseshiftError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise PoseshiftError(f"cannot read checkpoint {path}: {type(exc).__name__}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise PoseshiftError(f"{path} is not a poseshift pose-network checkpoint")
    return payload


def read_snapshot(
    path: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    *,
    fallback: tuple[ScoremapCodec, float] | None = None,
) -> Snapshot:
    """The network, codec and input scale ``save_posenet`` wrote, from the file alone.

    Snapshots of versions that stored no codec use ``fallback`` (the run's recipe), else
    DeepLabCut's defaults at scale 1.
    """
    path = Path(path)
    payload = _read_payload(path, map_location)
    model = posenet_from_config(payload["config"], str(path))
    load_weights(model, payload["state_dict"], path)
    if "codec" in payload:
        codec = ScoremapCodec(model.stride, **payload["codec"])
        scale = float(payload["input_scale"])
    else:
        codec, scale = fallback or (ScoremapCodec(model.stride), 1.0)
    return Snapshot(model.to(map_location), codec, scale)


def load_posenet(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> PoseNet:
    """Rebuild the network ``save_posenet`` wrote, from the file alone."""
    return read_snapshot(path, map_location).model
