"""The training loop: one readable function over a run directory.

A run directory holds everything needed to reproduce or resume: ``run.yaml`` (what was asked
for, resolved), ``environment.json``, ``split.json`` (image membership), ``log.jsonl``,
``checkpoints/last.pt`` (model, optimizer, RNG, iteration), ``snapshots/snapshot-<it>.pt``
and ``done.json``. Re-running a finished run does nothing; an interrupted one resumes from
its last checkpoint and continues exactly.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

from poseshift.config import from_dict, to_dict
from poseshift.data.augment import Augmenter
from poseshift.data.loader import TrainingStream, training_loader
from poseshift.data.project import PoseDataset, load_project
from poseshift.data.splits import Split, default_split, load_split
from poseshift.errors import PoseshiftError
from poseshift.fsutil import write_atomic, write_json_atomic, write_text_atomic
from poseshift.models.codec import ScoremapCodec
from poseshift.models.posenet import build_posenet, save_posenet
from poseshift.train.config import TrainConfig
from poseshift.train.loss import pose_loss
from poseshift.train.progress import TrainingProgress


@dataclass
class RunSpec:
    """What a run trains: data, split cell, network and recipe (stored as run.yaml)."""

    project: str
    backbone: str
    split: str | None = None  # None: the project's default (TrainingFraction, seeded)
    shuffle: int = 1
    fraction: float | None = None  # None: the split's only (or largest) fraction
    init: str = "imagenet"  # imagenet | scratch | path to a weights file
    preset: str = "paper"
    device: str = "auto"
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class RunResult:
    run_dir: Path
    iteration: int
    finished: bool
    skipped: bool = False


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PoseshiftError(f"--device {name}: no CUDA device is visible; use --device cpu")
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 where the hardware is fast at it; fp32 on CPUs without it."""
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return None
    return torch.bfloat16 if precision == "bf16" else torch.float16


# ----------------------------------------------------------------------------- run directory


def resolve_membership(spec: RunSpec, dataset: PoseDataset) -> tuple[Split, dict[str, list[str]]]:
    split = load_split(spec.project, spec.split) if spec.split else default_split(dataset)
    shuffle = split.shuffle(spec.shuffle)
    fraction = spec.fraction if spec.fraction is not None else max(split.fractions)
    return split, shuffle.partitions(fraction)


def prepare_run_dir(
    run_dir: Path, spec: RunSpec, membership: dict, split: Split, bodyparts: list[str]
) -> None:
    """Write run.yaml, split.json, environment.json; refuse a dir holding another run."""
    wanted = to_dict(spec)
    existing = run_dir / "run.yaml"
    if existing.exists():
        stored = yaml.safe_load(existing.read_text())
        changed = [k for k in wanted if stored.get(k) != wanted[k]]
        if changed:
            raise PoseshiftError(
                f"{run_dir} holds a run with different settings ({changed[0]}: "
                f"{stored.get(changed[0])!r} vs {wanted[changed[0]]!r}); use a new --out"
            )
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        run_dir / "split.json",
        {
            "split": split.name,
            "scheme": split.scheme,
            "shuffle": spec.shuffle,
            "bodyparts": bodyparts,
            **membership,
        },
    )
    write_json_atomic(run_dir / "environment.json", environment())
    write_text_atomic(existing, yaml.safe_dump(wanted, sort_keys=False))


def environment() -> dict:
    import timm

    from poseshift import __version__

    return {
        "poseshift": __version__,
        "torch": torch.__version__,
        "timm": timm.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpu_threads": torch.get_num_threads(),
    }


def read_spec(run_dir: Path) -> RunSpec:
    path = Path(run_dir) / "run.yaml"
    if not path.is_file():
        raise PoseshiftError(f"{run_dir} is not a poseshift run directory (no run.yaml)")
    return from_dict(RunSpec, yaml.safe_load(path.read_text()), str(path))


def snapshot_path(run_dir: Path, iteration: int) -> Path:
    return Path(run_dir) / "snapshots" / f"snapshot-{iteration:07d}.pt"


def list_snapshots(run_dir: Path) -> list[int]:
    return sorted(int(p.stem.split("-")[1]) for p in (Path(run_dir) / "snapshots").glob("*.pt"))


# ----------------------------------------------------------------------------- training


def training_size(
    dataset: PoseDataset, indices: np.ndarray, config: TrainConfig
) -> tuple[int, int]:
    """Crop (W, H): configured, or the largest scaled training image rounded up to 16."""
    if config.augment.crop:
        return tuple(config.augment.crop)  # type: ignore[return-value]
    width, height = dataset.image_sizes[indices].max(axis=0) * config.augment.global_scale
    return int(math.ceil(width / 16) * 16), int(math.ceil(height / 16) * 16)


def _make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=0.0, momentum=config.momentum, weight_decay=config.weight_decay
        )
    return torch.optim.AdamW(params, lr=0.0, weight_decay=config.weight_decay)


def _save_checkpoint(path: Path, model, optimizer, iteration: int) -> None:
    state = {
        "iteration": iteration,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    write_atomic(path, lambda tmp: torch.save(state, tmp))


def _load_checkpoint(path: Path, model, optimizer) -> int:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as exc:
        raise PoseshiftError(
            f"checkpoint {path} cannot be read ({exc}); delete it to restart the run"
        ) from None
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["iteration"])


def _trim_log(path: Path, iteration: int) -> None:
    """Drop log lines written after the checkpoint we resume from (they will be redone)."""
    if not path.exists():
        return
    kept = [
        line
        for line in path.read_text().splitlines()
        if line and json.loads(line)["iteration"] <= iteration
    ]
    write_text_atomic(path, "".join(line + "\n" for line in kept))


def train(
    spec: RunSpec,
    run_dir: str | Path,
    on_iteration: Callable[[int, dict], None] | None = None,
    show_progress: bool = True,
) -> RunResult:
    """Train (or resume, or skip) the run in ``run_dir``.

    ``on_iteration(iteration, losses)`` is called after every step (progress displays, tests
    that interrupt a run); a KeyboardInterrupt there or from Ctrl-C saves a checkpoint.
    """
    run_dir = Path(run_dir)
    config = spec.train
    if (run_dir / "done.json").exists():
        read_spec(run_dir)
        return RunResult(run_dir, config.iterations, finished=True, skipped=True)
    dataset = load_project(spec.project)
    split, membership = resolve_membership(spec, dataset)
    prepare_run_dir(run_dir, spec, membership, split, dataset.bodyparts)
    train_indices = dataset.indices_of(membership["train"])

    device = pick_device(spec.device)
    torch.manual_seed(config.seed)
    model = build_posenet(spec.backbone, len(dataset.bodyparts), init=spec.init).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = _make_optimizer(model, config)
    checkpoint = run_dir / "checkpoints" / "last.pt"
    start = _load_checkpoint(checkpoint, model, optimizer) if checkpoint.exists() else 0
    _trim_log(run_dir / "log.jsonl", start)

    size = training_size(dataset, train_indices, config)
    augment = Augmenter(config.augment, size, dataset.bodyparts)
    stream = TrainingStream(dataset, train_indices, augment, config.seed, config.cache_images)
    loader = training_loader(
        stream,
        config.batch_size,
        start,
        config.iterations,
        config.num_workers,
        pin_memory=device.type == "cuda",
    )
    codec = ScoremapCodec(8, config.pos_dist_thresh, config.locref_stdev)
    step = _make_step(model, optimizer, codec, config, device)
    snapshots = set(config.snapshots) | {config.iterations}

    iteration = start
    progress = TrainingProgress(config.iterations, start, enabled=show_progress)
    try:
        with progress, (run_dir / "log.jsonl").open("a") as log:
            tick, logged = time.perf_counter(), start
            for images, keypoints in loader:
                lr = config.lr_at(iteration, spec.init)
                losses = step(images, keypoints, lr)
                iteration += 1
                progress.update(iteration, losses["total"])
                if iteration % config.log_every == 0 or iteration == config.iterations:
                    elapsed = time.perf_counter() - tick
                    rate = config.batch_size * (iteration - logged) / max(elapsed, 1e-9)
                    tick, logged = time.perf_counter(), iteration
                    log.write(
                        json.dumps(
                            {
                                "iteration": iteration,
                                "lr": lr,
                                **losses,
                                "images_per_s": round(rate, 3),
                            }
                        )
                        + "\n"
                    )
                    log.flush()
                if iteration in snapshots:
                    save_posenet(model, snapshot_path(run_dir, iteration))
                if iteration % config.checkpoint_every == 0 or iteration == config.iterations:
                    _save_checkpoint(checkpoint, model, optimizer, iteration)
                if on_iteration is not None:
                    on_iteration(iteration, losses)
    except KeyboardInterrupt:
        _save_checkpoint(checkpoint, model, optimizer, iteration)
        return RunResult(run_dir, iteration, finished=False)
    write_json_atomic(
        run_dir / "done.json", {"iterations": iteration, "snapshots": list_snapshots(run_dir)}
    )
    return RunResult(run_dir, iteration, finished=True)


def _make_step(model, optimizer, codec: ScoremapCodec, config: TrainConfig, device):
    """One optimization step on a batch of uint8 images and keypoints."""
    dtype = autocast_dtype(config.precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
    memory = torch.channels_last if config.channels_last else torch.contiguous_format
    forward = torch.compile(model) if config.compile else model

    def step(images: torch.Tensor, keypoints: torch.Tensor, lr: float) -> dict[str, float]:
        for group in optimizer.param_groups:
            group["lr"] = lr
        images = images.to(device, non_blocking=True).permute(0, 3, 1, 2)
        images = model.normalize(images).contiguous(memory_format=memory)
        keypoints = keypoints.to(device, non_blocking=True)
        model.train()
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            outputs = {name: out.float() for name, out in forward(images).items()}
        targets = codec.encode(keypoints, tuple(outputs["scoremaps"].shape[-2:]))
        losses = pose_loss(outputs, targets, config.locref_loss_weight)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(losses["total"]).backward()
        scaler.step(optimizer)
        scaler.update()
        return {name: float(value.detach()) for name, value in losses.items()}

    return step
