"""The pose network: a stride-16 backbone plus the DeepLabCut deconvolution head.

A checkpoint written by ``save_posenet`` is self-describing: it stores the backbone name,
the number of keypoints and the input normalization next to the weights, so
``load_posenet(path)`` needs nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from poseshift.errors import PoseshiftError
from poseshift.fsutil import write_atomic
from poseshift.models.backbones import create_backbone, get_backbone
from poseshift.models.head import STRIDE, DeconvHead

CHECKPOINT_FORMAT = "poseshift-posenet-1"


class PoseNet(nn.Module):
    """Backbone + head. ``forward`` takes normalized images (see ``normalize``).

    Returns ``{"scoremaps": (B, K, h, w) logits, "locref": (B, 2K, h, w)}`` with
    ``(h, w) = head.map_size(H, W)``; locref channels 2k and 2k+1 are dx and dy of keypoint k.
    """

    stride = STRIDE

    def __init__(
        self,
        backbone: str,
        num_keypoints: int,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
    ) -> None:
        super().__init__()
        if num_keypoints < 1:
            raise PoseshiftError(f"a pose network needs at least one keypoint, got {num_keypoints}")
        self.backbone_name = get_backbone(backbone).name
        self.num_keypoints = num_keypoints
        self.backbone = create_backbone(backbone)
        self.head = DeconvHead(self.backbone.feature_info.channels()[-1], num_keypoints)
        if mean is None or std is None:
            import timm.data

            data_config = timm.data.resolve_model_data_config(self.backbone)
            mean, std = data_config["mean"], data_config["std"]
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """(..., 3, H, W) uint8 images, or floats in [0, 1], to the backbone's input scale."""
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        mean = torch.tensor(self.mean, device=x.device).view(3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(3, 1, 1)
        return (x - mean) / std

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone(images)[-1]
        scoremaps, locref = self.head(features)
        return {"scoremaps": scoremaps, "locref": locref}

    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild this network (weights aside)."""
        return {
            "backbone": self.backbone_name,
            "num_keypoints": self.num_keypoints,
            "mean": list(self.mean),
            "std": list(self.std),
            "stride": self.stride,
        }


def build_posenet(
    backbone: str,
    num_keypoints: int,
    init: str = "scratch",
    weights: str | os.PathLike[str] | None = None,
) -> PoseNet:
    """A PoseNet whose backbone starts from ``init``: "imagenet", "scratch" or a weights file.

    "imagenet" looks for weights in the order documented in ``poseshift.models.weights``
    (``weights`` first, if given); a file path is loaded in any layout ``weights`` converts.
    The head always starts fresh.
    """
    from poseshift.models.weights import load_backbone_weights, load_imagenet_weights

    model = PoseNet(backbone, num_keypoints)
    if init == "imagenet":
        load_imagenet_weights(model.backbone, model.backbone_name, weights)
    elif weights is not None:
        raise PoseshiftError(f"weights={weights} only applies to init='imagenet', not {init!r}")
    elif init != "scratch":
        if not Path(init).is_file():
            raise PoseshiftError(
                f"init must be 'imagenet', 'scratch' or a weights file; {init} is none of these"
            )
        load_backbone_weights(model.backbone, init, model.backbone_name)
    return model


def save_posenet(model: PoseNet, path: str | os.PathLike[str]) -> Path:
    """Write config + weights atomically (a reader never sees half a checkpoint)."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": model.config(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    return write_atomic(path, lambda tmp: torch.save(payload, tmp))


def load_posenet(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> PoseNet:
    """Rebuild the network ``save_posenet`` wrote, from the file alone."""
    path = Path(path)
    if not path.is_file():
        raise PoseshiftError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise PoseshiftError(f"cannot read checkpoint {path}: {type(exc).__name__}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise PoseshiftError(f"{path} is not a poseshift pose-network checkpoint")
    config = payload["config"]
    model = PoseNet(config["backbone"], config["num_keypoints"], config["mean"], config["std"])
    model.load_state_dict(payload["state_dict"])
    return model.to(map_location)
