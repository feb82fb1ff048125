"""Training configuration and the shipped presets (``paper``, ``paper-long``, ``fast``)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from poseshift.config import from_dict, load_yaml
from poseshift.errors import PoseshiftError


@dataclass
class AugmentConfig:
    """DeepLabCut's default augmentation, expressed for albumentations."""

    global_scale: float = 0.8
    scale_jitter: tuple[float, float] = (0.5, 1.25)
    rotation: float = 25.0  # degrees, +-
    rotation_p: float = 0.4
    motion_blur_p: float = 0.5
    brightness_contrast_p: float = 0.0
    fliplr: bool = False
    symmetric_pairs: list[list[str]] = field(default_factory=list)
    crop: tuple[int, int] | None = None  # (W, H) of training crops; None: whole scaled image
    # "uniform": anywhere; "keypoints": around a labeled keypoint; "hybrid": half and half
    # (DeepLabCut 3's default idea: few crops without the animal).
    crop_sampling: Literal["uniform", "keypoints", "hybrid"] = "hybrid"
    crop_max_shift: float = 0.4  # a keypoint-centred crop puts its keypoint within +-40 % of mid


@dataclass
class TrainConfig:
    iterations: int = 100_000
    batch_size: int = 1
    optimizer: Literal["sgd", "adamw"] = "sgd"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_schedule: Literal["steps", "cosine"] = "steps"
    # "steps": per init kind, [[lr, until_iteration], ...]; the last entry runs to the end.
    lr_steps: dict[str, list[list[float]]] = field(default_factory=dict)
    lr: float = 1e-3  # peak LR of the cosine schedule
    warmup_iters: int = 0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    channels_last: bool = True
    compile: bool = False
    snapshots: list[int] = field(default_factory=list)  # kept for error-vs-iterations curves
    checkpoint_every: int = 5_000
    log_every: int = 100
    num_workers: int = 2
    cache_images: bool = True
    seed: int = 0
    pos_dist_thresh: float = 17.0
    locref_stdev: float = 7.2801
    locref_loss_weight: float = 0.05
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def lr_at(self, iteration: int, init: str) -> float:
        """Learning rate for an iteration (0-based)."""
        if self.lr_schedule == "cosine":
            if iteration < self.warmup_iters:
                return self.lr * (iteration + 1) / self.warmup_iters
            progress = (iteration - self.warmup_iters) / max(1, self.iterations - self.warmup_iters)
            return 0.5 * self.lr * (1 + math.cos(math.pi * min(1.0, progress)))
        steps = self.lr_steps.get("scratch" if init == "scratch" else "imagenet")
        if not steps:
            raise PoseshiftError("lr_steps needs entries 'imagenet' and 'scratch'")
        for lr, until in steps:
            if iteration < until:
                return lr
        return steps[-1][0]


def preset_names() -> list[str]:
    folder = resources.files("poseshift") / "presets"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def load_preset(name_or_path: str) -> TrainConfig:
    """A shipped preset by name, or a YAML file with TrainConfig keys."""
    path = Path(name_or_path)
    if not path.suffix:
        if name_or_path not in preset_names():
            raise PoseshiftError(
                f"unknown preset {name_or_path!r}; choose one of {preset_names()} or a YAML file"
            )
        path = Path(str(resources.files("poseshift") / "presets" / f"{name_or_path}.yaml"))
    return from_dict(TrainConfig, load_yaml(path) or {}, str(path))


def with_overrides(config: TrainConfig, **overrides) -> TrainConfig:
    """A copy with the non-None overrides applied (e.g. --iters from the CLI)."""
    values = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(config, **values)
