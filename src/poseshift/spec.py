"""What a run is: its recipe (what determines the result) and its execution (how it runs).

The recipe (``TrainConfig`` in ``RunSpec.train`` plus project, backbone, split cell and init)
is what a finished run is compared against and what names its outputs. The execution
(``Execution``: device, processes, data workers, compilation, memory format, checkpoint and
log frequency) may change between sessions of one run; each session records its own in
``environment.json``.

Presets, plans and CLI options all pass through ``resolve_settings``: one flat mapping of
keys (either kind; ``augment`` nested), merged over the preset, type-checked, value-checked,
and failing before any work with one line naming the key.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from poseshift.config import from_dict, load_yaml, to_dict
from poseshift.errors import PoseshiftError

INITS = ("imagenet", "scratch")


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
    # "fixed": every sample on one canvas (``crop``, else the largest frame x global_scale),
    # padded or cropped to it; "per_image": each image at its own scaled size, padded to the
    # stride (and, in batches > 1, to the batch's largest), never cropped, as DeepLabCut-TF
    # trained at batch 1 (docs/protocol.md, row 15): no content cut away and, at batch 1, only
    # the stride's padding (10 % of the pixels on average for 288x162 frames) in BatchNorm
    # statistics and loss cells, not a whole canvas's.
    canvas: Literal["fixed", "per_image"] = "fixed"
    crop: tuple[int, int] | None = None  # (W, H) of training crops; None: whole scaled image
    # "uniform": anywhere; "keypoints": around a labeled keypoint; "hybrid": half and half
    # (DeepLabCut 3's default idea: few crops without the animal).
    crop_sampling: Literal["uniform", "keypoints", "hybrid"] = "hybrid"
    crop_max_shift: float = 0.4  # a keypoint-centred crop puts its keypoint within +-40 % of mid
    # DeepLabCut 2.2's imgaug defaults (pose_imgaug.py), each applied with its probability:
    # each side cropped or padded by up to crop_pad of its size, then resized back;
    crop_pad_p: float = 0.0
    crop_pad: float = 0.15
    # an elastic warp, imgaug's ElasticTransformation(alpha=(0, 40), sigma=5);
    elastic_p: float = 0.0
    # 2 % of pixels dropped in blocks, imgaug's CoarseDropout(0.02, size_percent=0.3).
    covering_p: float = 0.0


@dataclass
class TrainConfig:
    """The training recipe: everything here changes the network a run produces."""

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
    # The cosine decays over warm-up .. cosine_iters (None: the run's end) from lr to
    # lr_final x lr, then stays there (TF's cosine_decay(decay_steps, alpha)).
    cosine_iters: int | None = None
    lr_final: float = 0.0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    snapshots: list[int] = field(default_factory=list)  # kept for error-vs-iterations curves
    seed: int = 0
    pos_dist_thresh: float = 17.0
    # The pixels the scoremap radius is measured in: "input" (the network's input) or
    # "image" (the original image: the disc shrinks with each sample's scale, as
    # DeepLabCut-TF's pos_dist_thresh * scale).
    pos_dist_units: Literal["input", "image"] = "input"
    locref_stdev: float = 7.2801
    locref_loss_weight: float = 0.05
    # BatchNorm per backbone family (resnet, mobilenetv2, efficientnet): "train" normalizes
    # by batch statistics in training, updates the running averages and predicts with them;
    # "frozen" uses the stored statistics in every forward pass while the affine scale and
    # shift still learn (TF-slim's batch_norm with is_training=False); "per_image"
    # normalizes each image by its own statistics in training and at inference (TF-slim's
    # is_training=True at batch 1, as DeepLabCut-TF's MobileNetV2s). Not named: train.
    batchnorm: dict[str, Literal["train", "frozen", "per_image"]] = field(default_factory=dict)
    # The backbone's feature network: "timm" (stride 16 by dilation, the last block's
    # output) or "deeplabcut" (MobileNetV2 / EfficientNet as DeepLabCut-TF built them: the
    # stride removed without dilation; MobileNetV2's 1x1 1280-channel layer under the head).
    features: Literal["timm", "deeplabcut"] = "timm"
    # The backbone's output stride: 16 (the last stage dilated, as DeepLabCut and the paper
    # built ResNets) or 32 (undilated, timm features only: a ResNet-50 step counts 0.69x the
    # operations), then a learned 2x upsampling; the maps are at stride 8 either way
    # (``poseshift.models.head``). Not in the run hash at 16, so older runs keep their names.
    backbone_stride: int = 16
    # The scale frames are resized by for prediction (stored in every snapshot); None: the
    # training ``augment.global_scale``. DeepLabCut-TF evaluated at full resolution (1.0).
    test_scale: float | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class Execution:
    """How a run executes; none of it changes the result (DDP trains the same on N processes,
    see ``poseshift.train.distributed``), so a run may resume with other values."""

    device: str = "auto"
    devices: int = 1  # processes (one per GPU) of data-parallel training; >1 needs batch >1
    num_workers: int = 2
    cache_images: bool = True
    compile: bool = False
    channels_last: bool = True
    checkpoint_every: int = 5_000
    log_every: int = 100


@dataclass
class RunSpec:
    """What a run trains (data, split cell, network, recipe) and how: stored as run.yaml."""

    project: str
    backbone: str
    split: str | None = None  # None: the project's default (TrainingFraction, seeded)
    shuffle: int = 1
    fraction: float | None = None  # None: the split's only (or largest) fraction
    init: str = "imagenet"  # imagenet | scratch | path to a weights file
    preset: str = "paper"
    train: TrainConfig = field(default_factory=TrainConfig)
    execution: Execution = field(default_factory=Execution)


RECIPE_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig))
EXECUTION_KEYS = tuple(f.name for f in dataclasses.fields(Execution))


# ----------------------------------------------------------------------------- presets


def preset_names() -> list[str]:
    folder = resources.files("poseshift") / "presets"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def preset_path(name_or_path: str) -> Path:
    """A shipped preset by name, or a YAML file of settings."""
    path = Path(name_or_path)
    if path.suffix:
        return path
    if name_or_path not in preset_names():
        raise PoseshiftError(
            f"unknown preset {name_or_path!r}; choose one of {preset_names()} or a YAML file"
        )
    return Path(str(resources.files("poseshift") / "presets" / f"{name_or_path}.yaml"))


def _merge(base: dict, overrides: Mapping[str, Any]) -> dict:
    """``overrides`` over ``base``; ``augment`` merges key by key (other values replace)."""
    merged = {**base, **overrides}
    if isinstance(base.get("augment"), Mapping) and isinstance(overrides.get("augment"), Mapping):
        merged["augment"] = {**base["augment"], **overrides["augment"]}
    return merged


def resolve_settings(
    preset: str, overrides: Mapping[str, Any] | None = None, *, where: str | None = None
) -> tuple[TrainConfig, Execution]:
    """The preset's recipe and execution with ``overrides`` applied, checked.

    ``overrides`` holds recipe and execution keys alike (``None`` values are ignored, as
    for CLI options left out). Another ``iterations`` without ``snapshots`` keeps the
    preset's snapshots that fall inside the run, and without ``warmup_iters`` the preset's
    warm-up as the same fraction of the run.
    """
    path = preset_path(preset)
    where = where or (str(path) if Path(preset).suffix else f"preset {preset}")
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    data = load_yaml(path) or {}
    if not isinstance(data, dict):
        raise PoseshiftError(f"{path}: expected a mapping of settings")
    merged = _merge(data, given)
    unknown = sorted(set(merged) - set(RECIPE_KEYS) - set(EXECUTION_KEYS))
    if unknown:
        source = where if unknown[0] in given else str(path)
        raise PoseshiftError(
            f"{source}: unknown key {unknown[0]!r} (allowed: {', '.join(RECIPE_KEYS)}; "
            f"and how it runs: {', '.join(EXECUTION_KEYS)})"
        )
    recipe = {k: v for k, v in merged.items() if k in RECIPE_KEYS}
    train = from_dict(TrainConfig, recipe, where)
    if "iterations" in given:
        preset_recipe = {k: v for k, v in data.items() if k in RECIPE_KEYS}
        train = _rescaled(train, from_dict(TrainConfig, preset_recipe, str(path)), given)
    execution = from_dict(
        Execution, {k: v for k, v in merged.items() if k in EXECUTION_KEYS}, where
    )
    check_values(train, execution, where)
    return train, execution


def _rescaled(train: TrainConfig, preset: TrainConfig, given: Mapping[str, Any]) -> TrainConfig:
    """Another run length keeps the preset's snapshots inside it and its warm-up fraction
    (unless ``snapshots`` / ``warmup_iters`` were given too)."""
    changes: dict[str, Any] = {}
    if "snapshots" not in given:
        changes["snapshots"] = [s for s in train.snapshots if s <= train.iterations]
    if "warmup_iters" not in given and preset.warmup_iters:
        share = preset.warmup_iters / preset.iterations
        changes["warmup_iters"] = min(train.iterations - 1, round(share * train.iterations))
    return dataclasses.replace(train, **changes)


# ----------------------------------------------------------------------------- value checks


def _require(ok: bool, where: str, key: str, rule: str, value: Any) -> None:
    if not ok:
        raise PoseshiftError(f"{where}: {key} must be {rule}, got {value!r}")


def check_values(train: TrainConfig, execution: Execution, where: str) -> None:
    """Ranges the types cannot say; the first violation fails naming its key."""
    t, a, e = train, train.augment, execution
    low, high = a.scale_jitter
    late = [s for s in t.snapshots if not 1 <= s <= t.iterations]
    probability = "a probability in [0, 1]"
    rules = [  # (key, value, holds, rule)
        ("iterations", t.iterations, t.iterations >= 1, "at least 1"),
        ("batch_size", t.batch_size, t.batch_size >= 1, "at least 1"),
        ("momentum", t.momentum, 0 <= t.momentum < 1, "in [0, 1)"),
        ("weight_decay", t.weight_decay, t.weight_decay >= 0, "0 or more"),
        ("lr", t.lr, t.lr > 0, "positive"),
        (
            "warmup_iters",
            t.warmup_iters,
            0 <= t.warmup_iters < t.iterations,
            f"0 or more and shorter than iterations ({t.iterations})",
        ),
        ("snapshots", late, not late, f"iterations in 1..{t.iterations}"),
        (
            "cosine_iters",
            t.cosine_iters,
            t.cosine_iters is None or t.cosine_iters > t.warmup_iters,
            f"longer than warmup_iters ({t.warmup_iters})",
        ),
        ("lr_final", t.lr_final, 0 <= t.lr_final <= 1, "a fraction of lr in [0, 1]"),
        ("seed", t.seed, t.seed >= 0, "0 or more"),
        ("pos_dist_thresh", t.pos_dist_thresh, t.pos_dist_thresh > 0, "positive"),
        ("locref_stdev", t.locref_stdev, t.locref_stdev > 0, "positive"),
        ("locref_loss_weight", t.locref_loss_weight, t.locref_loss_weight >= 0, "0 or more"),
        ("test_scale", t.test_scale, t.test_scale is None or t.test_scale > 0, "positive"),
        (
            "backbone_stride",
            t.backbone_stride,
            t.backbone_stride == 16 or (t.backbone_stride == 32 and t.features == "timm"),
            "16, or 32 with features: timm",
        ),
        ("augment.global_scale", a.global_scale, a.global_scale > 0, "positive"),
        ("augment.scale_jitter", [low, high], 0 < low <= high, "[low, high], 0 < low <= high"),
        ("augment.rotation", a.rotation, a.rotation >= 0, "0 or more degrees"),
        ("augment.rotation_p", a.rotation_p, 0 <= a.rotation_p <= 1, probability),
        ("augment.motion_blur_p", a.motion_blur_p, 0 <= a.motion_blur_p <= 1, probability),
        (
            "augment.brightness_contrast_p",
            a.brightness_contrast_p,
            0 <= a.brightness_contrast_p <= 1,
            probability,
        ),
        (
            "augment.symmetric_pairs",
            a.symmetric_pairs,
            all(len(pair) == 2 for pair in a.symmetric_pairs),
            "pairs of two bodyparts",
        ),
        (
            "augment.crop",
            a.crop,
            a.crop is None or (len(a.crop) == 2 and min(a.crop) >= 16),
            "[W, H], each >= 16",
        ),
        (
            "augment.canvas",
            a.canvas,
            a.canvas == "fixed" or a.crop is None,
            f"fixed with a crop {list(a.crop or [])} (per_image trains on whole scaled images)",
        ),
        ("augment.crop_max_shift", a.crop_max_shift, 0 <= a.crop_max_shift <= 0.5, "in [0, 0.5]"),
        ("augment.crop_pad_p", a.crop_pad_p, 0 <= a.crop_pad_p <= 1, probability),
        ("augment.crop_pad", a.crop_pad, 0 <= a.crop_pad < 0.5, "in [0, 0.5)"),
        ("augment.elastic_p", a.elastic_p, 0 <= a.elastic_p <= 1, probability),
        ("augment.covering_p", a.covering_p, 0 <= a.covering_p <= 1, probability),
        ("devices", e.devices, e.devices >= 1, "at least 1"),
        ("num_workers", e.num_workers, e.num_workers >= 0, "0 or more"),
        ("checkpoint_every", e.checkpoint_every, e.checkpoint_every >= 1, "at least 1"),
        ("log_every", e.log_every, e.log_every >= 1, "at least 1"),
    ]
    for key, value, holds, rule in rules:
        _require(holds, where, key, rule, value)
    from poseshift.models.backbones import FAMILIES

    unknown = sorted(set(t.batchnorm) - set(FAMILIES))
    _require(not unknown, where, "batchnorm", f"keyed by {', '.join(FAMILIES)}", unknown)
    if t.lr_schedule == "steps":
        _check_lr_steps(t.lr_steps, where)


def _check_lr_steps(steps: dict[str, list[list[float]]], where: str) -> None:
    """Entries for both init kinds, each ``[lr > 0, until]`` with ``until`` increasing."""
    for kind in INITS:
        entries = steps.get(kind) or []
        key = f"lr_steps.{kind}"
        _require(bool(entries), where, key, "a list of [lr, until_iteration]", entries)
        previous = 0.0
        for i, entry in enumerate(entries):
            ok = len(entry) == 2 and entry[0] > 0 and entry[1] > previous
            rule = "[lr > 0, until_iteration] with until increasing"
            _require(ok, where, f"{key}[{i}]", rule, entry)
            previous = entry[1]
    extra = sorted(set(steps) - set(INITS))
    _require(not extra, where, "lr_steps", f"keyed by {' and '.join(INITS)}", extra)


def validate_spec(spec: RunSpec) -> None:
    """Refuse typos in names and values before a run directory is created for them.

    ImageNet weights are only located when the network is built; here just the spelling.
    """
    from poseshift.models.backbones import get_backbone

    get_backbone(spec.backbone)
    if spec.init not in INITS and not Path(spec.init).is_file():
        raise PoseshiftError(
            f"--init {spec.init!r}: choose imagenet, scratch or an existing weights file"
        )
    where = f"preset {spec.preset}"
    train = from_dict(TrainConfig, to_dict(spec.train), where)  # literals, types, keys
    execution = from_dict(Execution, to_dict(spec.execution), where)
    check_values(train, execution, where)


# ----------------------------------------------------------------------------- identity


def recipe_dict(spec: RunSpec) -> dict:
    """run.yaml's content that determines the result (the execution left out)."""
    values = to_dict(spec)
    values.pop("execution")
    return values


# Recipe keys added after runs were made, at the value that trains as runs did before the
# key existed: left out of the hash there, so those runs keep their names (scorers, outputs).
HASH_NEUTRAL = {("train", "augment", "canvas"): "fixed", ("train", "backbone_stride"): 16}


def run_hash(spec: RunSpec) -> str:
    """A short hash of what the run trains (its recipe): names outputs."""
    values = recipe_dict(spec)
    for (*parents, key), neutral in HASH_NEUTRAL.items():
        section = functools.reduce(dict.__getitem__, parents, values)
        if section[key] == neutral:
            del section[key]
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def recipe_changes(train: TrainConfig, preset: str) -> dict:
    """The recipe keys whose values differ from the preset's (what an override changed)."""
    base = to_dict(resolve_settings(preset)[0])
    return {k: v for k, v in to_dict(train).items() if base.get(k) != v}


def batchnorm_mode(spec: RunSpec) -> str:
    """The recipe's BatchNorm mode for the run's backbone family (``train`` unless named)."""
    from poseshift.models.backbones import get_backbone

    return spec.train.batchnorm.get(get_backbone(spec.backbone).family, "train")


def init_label(init: str) -> str:
    """``imagenet``, ``scratch``, or ``custom`` for a weights file (tables, scorer names)."""
    return init if init in INITS else "custom"
