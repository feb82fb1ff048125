"""How a backbone's weights were trained: what the network must be built and fed to match.

ImageNet weights from TensorFlow (Keras, TF.js, TFLite, the EfficientNet-Lite ports) expect
TF "SAME" padding (asymmetric for stride 2), BatchNorm epsilon 1e-3 and inputs scaled to
[-1, 1]; PyTorch-trained ones (torchvision, timm, d-li14) expect symmetric padding, epsilon
1e-5 and torchvision's ImageNet mean / std. A ``WeightsOrigin`` travels with imported weights
(safetensors metadata) and with every checkpoint of a run (``PoseNet.config()``), so
training, evaluation, video analysis and export all build and normalize the same way.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from poseshift.errors import PoseshiftError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PADDINGS = ("symmetric", "same")


@dataclass(frozen=True)
class WeightsOrigin:
    """Build and input conventions of a set of weights, and their own ImageNet top-1."""

    padding: str = "symmetric"  # "same": TensorFlow SAME padding
    bn_eps: float = 1e-5
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    top1: float | None = None  # ImageNet-1k top-1 (%) of exactly these weights
    top1_source: str = ""
    source: str = ""  # the file or package the weights came from
    batchnorm: str = "trained"  # "trained" | how folded BatchNorm layers were re-created

    def __post_init__(self) -> None:
        if self.padding not in PADDINGS:
            raise PoseshiftError(f"weights origin: padding must be one of {PADDINGS}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str) -> WeightsOrigin:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise PoseshiftError(f"{where}: unknown weights-origin key {unknown[0]!r}")
        values = dict(values)
        for key in ("mean", "std"):
            if key in values:
                values[key] = tuple(float(v) for v in values[key])
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str, where: str) -> WeightsOrigin:
        try:
            return cls.from_dict(json.loads(text), where)
        except (ValueError, TypeError) as exc:
            raise PoseshiftError(f"{where}: unreadable weights origin ({exc})") from None

    def timm_kwargs(self, arch: str) -> dict[str, Any]:
        """What ``timm.create_model`` needs for these conventions (nothing for the defaults)."""
        kwargs: dict[str, Any] = {}
        if self.padding == "same":
            kwargs["pad_type"] = "same"
        if self.bn_eps != 1e-5 or arch.startswith("tf_"):
            kwargs["bn_eps"] = self.bn_eps
        if kwargs and not arch.startswith(("mobilenetv2", "efficientnet", "tf_efficientnet")):
            raise PoseshiftError(
                f"{arch} cannot be built with {self.padding} padding / BatchNorm eps "
                f"{self.bn_eps}: these weights ({self.source or 'unknown source'}) are for "
                "another architecture"
            )
        return kwargs


PYTORCH = WeightsOrigin()
TENSORFLOW = WeightsOrigin(padding="same", bn_eps=1e-3, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


def config_origin(config: dict[str, Any], where: str) -> WeightsOrigin:
    """The origin a checkpoint config records (older checkpoints: PyTorch conventions)."""
    if "origin" in config:
        return WeightsOrigin.from_dict(config["origin"], where)
    eps = 1e-3 if config["backbone"] in ("efficientnet_b5", "efficientnet_b6") else 1e-5
    return WeightsOrigin(bn_eps=eps, mean=tuple(config["mean"]), std=tuple(config["std"]))
