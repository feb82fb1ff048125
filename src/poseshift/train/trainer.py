"""The training loop: one readable function over a run directory.

A run directory holds everything needed to reproduce or resume: ``run.yaml`` (what was asked
for, resolved), ``environment.json``, ``split.json`` (image membership), ``log.jsonl``,
``checkpoints/last.pt`` (model, optimizer, RNG, iteration), ``snapshots/snapshot-<it>.pt``,
``tensorboard/`` (curves) and ``done.json``. Re-running a finished run does nothing (asking
for other settings in its directory is refused, see ``identity``); an interrupted one
resumes from its last checkpoint and continues exactly. A run can train on
several processes (``RunSpec.devices`` or torchrun; see ``distributed``) with the same result.
"""

from __future__ import annotations

import contextlib
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
from poseshift.models.posenet import build_posenet, posenet_from_config, save_posenet
from poseshift.train import distributed
from poseshift.train.config import TrainConfig
from poseshift.train.curves import TrainingLog
from poseshift.train.distributed import Ranks
from poseshift.train.identity import check_same_run, validate_spec
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
    devices: int = 1  # processes (one per GPU) of data-parallel training; >1 needs batch >1
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


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matrix products run at about twice the fp32 rate."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision``; "auto" is bf16 where the hardware is fast at it.

    CUDA: bf16 (fp16 on GPUs without bf16); CPU: bf16 with native bf16 instructions
    (2-4x fewer CPU-seconds per training image, benchmarks/train_vs_dlc3.md), else fp32.
    """
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else None
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
    """Write run.yaml and split.json; refuse a dir holding another run."""
    existing = run_dir / "run.yaml"
    if existing.exists():
        check_same_run(run_dir, spec)
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
    write_text_atomic(existing, yaml.safe_dump(to_dict(spec), sort_keys=False))


def device_name(device: torch.device) -> str:
    """A readable device name (GPU model, or the CPU model from /proc/cpuinfo)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                threads = torch.get_num_threads()
                return f"CPU {line.split(':', 1)[1].strip()}, {threads} torch thread(s)"
    except OSError:
        pass
    return f"CPU {platform.processor() or platform.machine()}"


def environment(device: torch.device, processes: int, precision: str) -> dict:
    """Versions and hardware of one training session (what produced these weights)."""
    import timm

    from poseshift import __version__

    dtype = autocast_dtype(precision, device)
    return {
        "poseshift": __version__,
        "torch": torch.__version__,
        "timm": timm.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device_name(device),
        "processes": processes,
        "autocast": str(dtype).removeprefix("torch.") if dtype else "off",
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def record_session(run_dir: Path, session: dict, resumed_at: int | None) -> None:
    """environment.json: the session that started the run, plus one entry per resume."""
    path = run_dir / "environment.json"
    if resumed_at is None or not path.is_file():
        write_json_atomic(path, session)
        return
    record = json.loads(path.read_text())
    record.setdefault("resumed", []).append({**session, "at_iteration": resumed_at})
    write_json_atomic(path, record)


def record_weights(run_dir: Path, origin: dict) -> None:
    """environment.json's "weights": where the network's initial weights came from."""
    path = run_dir / "environment.json"
    record = json.loads(path.read_text())
    if record.get("weights") != origin:
        write_json_atomic(path, {**record, "weights": origin})


def read_weights_origin(run_dir: Path) -> dict:
    """The origin ``record_weights`` stored ({} for runs of older versions)."""
    path = Path(run_dir) / "environment.json"
    return json.loads(path.read_text()).get("weights", {}) if path.is_file() else {}


def read_spec(run_dir: Path) -> RunSpec:
    path = Path(run_dir) / "run.yaml"
    if not path.is_file():
        raise PoseshiftError(f"{run_dir} is not a poseshift run directory (no run.yaml)")
    return from_dict(RunSpec, yaml.safe_load(path.read_text()), str(path))


def read_membership(run_dir: Path) -> dict:
    """The run's split.json: bodyparts in channel order and the images of each partition."""
    path = Path(run_dir) / "split.json"
    if not path.is_file():
        raise PoseshiftError(f"{run_dir} has no split.json; it is not a complete training run")
    return json.loads(path.read_text())


def snapshot_path(run_dir: Path, iteration: int) -> Path:
    return Path(run_dir) / "snapshots" / f"snapshot-{iteration:07d}.pt"


def list_snapshots(run_dir: Path) -> list[int]:
    # "snapshot-*" leaves out ".snapshot-*.tmp.pt", the half-written file of a killed process.
    names = (Path(run_dir) / "snapshots").glob("snapshot-*.pt")
    return sorted(int(p.stem.split("-")[1]) for p in names)


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
        "config": model.config(),  # how the network was built (origin of its weights)
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    write_atomic(path, lambda tmp: torch.save(state, tmp))


def _read_checkpoint(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as exc:
        raise PoseshiftError(
            f"checkpoint {path} cannot be read ({exc}); delete it to restart the run"
        ) from None


def _restore(state: dict, model, optimizer) -> int:
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["iteration"])


def _resume_hint(run_dir: Path) -> str:
    path = run_dir / "checkpoints" / "last.pt"
    if not path.exists():
        return "no checkpoint was written yet: running the same command again starts over"
    iteration = torch.load(path, map_location="cpu", weights_only=False, mmap=True)["iteration"]
    return f"running the same command again resumes from the checkpoint at iteration {iteration}"


def _finished(run_dir: Path, spec: RunSpec) -> bool:
    """done.json is there, for this very spec (another finished run is refused, not reused)."""
    if not (run_dir / "done.json").exists():
        return False
    read_spec(run_dir)  # a finished dir is a valid run dir
    check_same_run(run_dir, spec)
    return True


def _follow_log(path: Path, on_iteration: Callable[[int, dict], None]) -> Callable[[], None]:
    """Call ``on_iteration`` for each iteration logged from now on (the ranks run elsewhere)."""

    def records() -> list[dict]:
        text = path.read_text() if path.exists() else ""
        return [json.loads(line) for line in text.split("\n")[:-1]]  # whole lines only

    seen = [max((r["iteration"] for r in records()), default=0)]

    def poll() -> None:
        for record in records():
            if record["iteration"] > seen[0]:
                seen[0] = record["iteration"]
                on_iteration(seen[0], {k: record[k] for k in ("total", "scoremap", "locref")})

    return poll


def train(
    spec: RunSpec,
    run_dir: str | Path,
    on_iteration: Callable[[int, dict], None] | None = None,
    show_progress: bool = True,
) -> RunResult:
    """Train (or resume, or skip) the run in ``run_dir``, in this process or several (DDP).

    ``on_iteration(iteration, losses)`` is called after every step (progress displays, tests
    that interrupt a run); a KeyboardInterrupt there saves a checkpoint, and so does Ctrl-C,
    once the current step is done (a second Ctrl-C stops at once, keeping the last
    checkpoint). With
    several processes it runs here, for each logged iteration, and a KeyboardInterrupt makes
    every rank stop after the same iteration.
    """
    run_dir = Path(run_dir)
    device = pick_device(spec.device)
    world = distributed.world_size(spec.devices)
    distributed.check_batch(spec.train.batch_size, world, spec.preset)
    if world == 1:
        ranks = Ranks(device=device)
        with distributed.stop_after_the_step(ranks):
            return _train(spec, run_dir, on_iteration, show_progress, ranks)
    follow = _follow_log(run_dir / "log.jsonl", on_iteration) if on_iteration else None
    try:
        return distributed.launch(
            _train, (spec, run_dir, None, show_progress), world, device.type, poll=follow
        )
    except distributed.RankFailed as exc:
        raise PoseshiftError(f"{exc}; {_resume_hint(run_dir)}") from None


def _train(
    spec: RunSpec,
    run_dir: Path,
    on_iteration: Callable[[int, dict], None] | None,
    show_progress: bool,
    ranks: Ranks,
) -> RunResult:
    """The training loop of one rank; rank 0 alone touches the run directory."""
    config = spec.train
    if ranks.on_main(lambda: _finished(run_dir, spec)):
        return RunResult(run_dir, config.iterations, finished=True, skipped=True)
    validate_spec(spec)  # before prepare_run_dir: a typo must not claim the run directory
    dataset = load_project(spec.project)
    split, membership = resolve_membership(spec, dataset)
    checkpoint = run_dir / "checkpoints" / "last.pt"

    def open_run() -> dict | None:
        prepare_run_dir(run_dir, spec, membership, split, dataset.bodyparts)
        state = _read_checkpoint(checkpoint)
        session = environment(ranks.device, ranks.world, config.precision)
        record_session(run_dir, session, state["iteration"] if state else None)
        return state

    state = ranks.on_main(open_run)
    train_indices = dataset.indices_of(membership["train"])

    torch.manual_seed(config.seed)
    if state and "config" in state:  # resume: the network the run started with
        model = posenet_from_config(state["config"], str(checkpoint))
    else:
        model = build_posenet(spec.backbone, len(dataset.bodyparts), init=spec.init)
    if ranks.is_main:
        record_weights(run_dir, model.origin.to_dict())
    model = model.to(ranks.device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = _make_optimizer(model, config)
    start = _restore(state, model, optimizer) if state else 0

    size = training_size(dataset, train_indices, config)
    augment = Augmenter(config.augment, size, dataset.bodyparts)
    stream = TrainingStream(dataset, train_indices, augment, config.seed, config.cache_images)
    loader = training_loader(
        stream,
        config.batch_size,
        start,
        config.iterations,
        config.num_workers,
        pin_memory=ranks.device.type == "cuda",
        rank=ranks.rank,
        world=ranks.world,
    )
    codec = ScoremapCodec(8, config.pos_dist_thresh, config.locref_stdev)
    step = _make_step(model, optimizer, codec, config, ranks)
    snapshots = set(config.snapshots) | {config.iterations}

    iteration = saved = start
    mid_step = False  # an interrupt now leaves a half-done step (BatchNorm statistics)
    progress = TrainingProgress(config.iterations, start, enabled=show_progress and ranks.is_main)
    log = TrainingLog(run_dir, start, config.batch_size) if ranks.is_main else None
    try:
        with progress, log or contextlib.nullcontext():
            for images, keypoints in loader:
                ranks.fault_point(iteration)
                lr = config.lr_at(iteration, spec.init)
                mid_step = True
                losses, stop = ranks.agree(step(images, keypoints, lr))
                iteration, mid_step = iteration + 1, False
                progress.update(iteration, losses["total"])
                if log is not None:
                    if iteration % config.log_every == 0 or iteration == config.iterations:
                        log.write(iteration, lr, losses)
                    if iteration in snapshots:
                        save_posenet(model, snapshot_path(run_dir, iteration))
                    if iteration % config.checkpoint_every == 0 or iteration == config.iterations:
                        _save_checkpoint(checkpoint, model, optimizer, iteration)
                        saved = iteration
                if on_iteration is not None:
                    on_iteration(iteration, losses)
                if stop and iteration < config.iterations:
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        if mid_step:  # a second Ctrl-C: resume from the last complete checkpoint
            return RunResult(run_dir, saved, finished=False)
        if ranks.is_main:
            _save_checkpoint(checkpoint, model, optimizer, iteration)
        return RunResult(run_dir, iteration, finished=False)
    if ranks.is_main:
        write_json_atomic(
            run_dir / "done.json", {"iterations": iteration, "snapshots": list_snapshots(run_dir)}
        )
    return RunResult(run_dir, iteration, finished=True)


def _make_step(model, optimizer, codec: ScoremapCodec, config: TrainConfig, ranks: Ranks):
    """One optimization step on this rank's slice of a batch of uint8 images and keypoints."""
    device = ranks.device
    dtype = autocast_dtype(config.precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
    memory = torch.channels_last if config.channels_last else torch.contiguous_format
    forward = ranks.parallel(model)
    if config.compile:
        forward = torch.compile(forward)

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
        losses = ranks.global_loss(pose_loss(outputs, targets, config.locref_loss_weight), targets)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(losses["total"]).backward()
        scaler.step(optimizer)
        scaler.update()
        return {name: float(value.detach()) for name, value in losses.items()}

    return step
