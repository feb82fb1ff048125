"""The training loop: one readable function over a run directory (``poseshift.run``).

Re-running a finished run does nothing (asking for another recipe in its directory is
refused); an interrupted one resumes from its last checkpoint and continues exactly, on any
device and with any number of workers (each session's execution is recorded in
environment.json). A run can train on several processes (``Execution.devices`` or torchrun;
see ``distributed``) with the same result.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import pickle
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from poseshift.config import to_dict
from poseshift.data.augment import Augmenter
from poseshift.data.loader import TrainingStream, training_loader
from poseshift.data.project import PoseDataset, load_project
from poseshift.data.splits import Split, default_split, load_split
from poseshift.device import autocast_dtype, device_name, dtype_name, pick_device
from poseshift.download import sha256_of
from poseshift.errors import PoseshiftError
from poseshift.fsutil import check_output_dir, write_atomic, write_json_atomic
from poseshift.models.codec import ScoremapCodec
from poseshift.models.posenet import (
    build_posenet,
    load_weights,
    posenet_from_config,
    save_posenet,
)
from poseshift.run import RunDir
from poseshift.spec import INITS, RunSpec, TrainConfig, batchnorm_mode, validate_spec
from poseshift.train import distributed
from poseshift.train.curves import TrainingLog
from poseshift.train.distributed import Ranks
from poseshift.train.loss import pose_loss
from poseshift.train.progress import TrainingProgress
from poseshift.train.schedule import learning_rate


@dataclass
class RunResult:
    run_dir: Path
    iteration: int
    finished: bool
    skipped: bool = False


def resolve_membership(spec: RunSpec, dataset: PoseDataset) -> tuple[Split, dict[str, list[str]]]:
    split = load_split(spec.project, spec.split) if spec.split else default_split(dataset)
    shuffle = split.shuffle(spec.shuffle)
    fraction = spec.fraction if spec.fraction is not None else max(split.fractions)
    return split, shuffle.partitions(fraction)


def training_inputs(spec: RunSpec, dataset: PoseDataset, membership: dict[str, list[str]]) -> dict:
    """What a run's weights come from besides its recipe: each partition's images, the
    bodyparts, a digest of the training labels and of an init weights file (split.json; a
    resume or skip checks them)."""
    train_labels = dataset.keypoints[dataset.indices_of(membership["train"])]
    digest = hashlib.sha256(np.ascontiguousarray(train_labels).tobytes()).hexdigest()
    inputs = {"bodyparts": dataset.bodyparts, **membership, "train_labels_sha256": digest}
    if spec.init not in INITS:
        init = Path(spec.init)
        # a file, or a TF.js folder (validate_spec has checked that it is there)
        files = sorted(f for f in init.iterdir() if f.is_file()) if init.is_dir() else [init]
        combined = "".join(f"{f.name}:{sha256_of(f)};" for f in files)
        inputs["init_sha256"] = hashlib.sha256(combined.encode()).hexdigest()
    return inputs


def prepare_run_dir(run: RunDir, spec: RunSpec, inputs: dict, split: Split) -> None:
    """Write run.yaml and split.json; refuse a dir holding another run or other data."""
    if run.exists():
        run.check_same_run(spec)
        run.check_same_inputs(inputs)
        return
    record = {"split": split.name, "scheme": split.scheme, "shuffle": spec.shuffle}
    run.create(spec, {**record, **inputs})


def environment(spec: RunSpec, device: torch.device, processes: int) -> dict:
    """Versions, hardware and execution of one training session (what produced these weights)."""
    import timm

    from poseshift import __version__

    return {
        "poseshift": __version__,
        "torch": torch.__version__,
        "timm": timm.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device_name(device),
        "processes": processes,
        "autocast": dtype_name(autocast_dtype(spec.train.precision, device)),
        "execution": to_dict(spec.execution),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


# ----------------------------------------------------------------------------- training


def training_size(config: TrainConfig, largest_frame: Sequence[int]) -> tuple[int, int]:
    """The fixed canvas (W, H): configured, or the largest (W, H) training frame scaled by the
    recipe's global scale and rounded up to the backbone stride (as the predictor pads its
    input)."""
    if config.augment.crop:
        return tuple(config.augment.crop)  # type: ignore[return-value]
    width, height = (v * config.augment.global_scale for v in largest_frame)
    return _padded((width, height), config.backbone_stride)


def typical_input_size(config: TrainConfig, frame: Sequence[int]) -> tuple[int, int]:
    """(W, H) of the network input that costs what an average sample does: the canvas, or
    (``per_image``) the frame at the root-mean-square jittered scale, padded to the stride."""
    if config.augment.canvas == "fixed":
        return training_size(config, frame)
    low, high = config.augment.scale_jitter
    rms = math.sqrt((low * low + low * high + high * high) / 3)  # E[s^2] of U(low, high)
    scale = config.augment.global_scale * rms
    return _padded([v * scale for v in frame], config.backbone_stride)


def _padded(size: Sequence[float], stride: int) -> tuple[int, int]:
    width, height = (math.ceil(v / stride) * stride for v in size)
    return width, height


def _make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    # One fused kernel over all parameters: on 2 CPU cores a ResNet-50 step of AdamW takes
    # 0.21 s instead of 0.45 s, of SGD 0.06 s instead of 0.18 s (benchmarks/train_step_profile.md)
    fused = params[0].device.type in ("cpu", "cuda")
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=0.0, momentum=config.momentum, weight_decay=config.weight_decay, fused=fused
        )
    return torch.optim.AdamW(params, lr=0.0, weight_decay=config.weight_decay, fused=fused)


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
        # weights_only: a run directory handed over by someone else never runs code on resume
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise PoseshiftError(
            f"checkpoint {path} cannot be read ({exc}); delete it to restart the run"
        ) from None


def _restore(state: dict, model, optimizer, path: Path) -> int:
    load_weights(model, state["model"], path, fix="delete it to restart the run")
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["iteration"])


def _resume_hint(run: RunDir) -> str:
    state = _read_checkpoint(run.checkpoint)
    if state is None:
        return "no checkpoint was written yet: running the same command again starts over"
    iteration = state["iteration"]
    return f"running the same command again resumes from the checkpoint at iteration {iteration}"


def _follow_log(run: RunDir, on_iteration: Callable[[int, dict], None]) -> Callable[[], None]:
    """Call ``on_iteration`` for each iteration logged from now on (the ranks run elsewhere)."""
    seen = [run.last_logged_iteration()]

    def poll() -> None:
        for record in run.log_records():
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
    run = RunDir(check_output_dir(run_dir, "--out"))
    validate_spec(spec)  # before any work: a typo must not claim the run directory
    device = pick_device(spec.execution.device)
    world = distributed.world_size(spec.execution.devices)
    distributed.check_batch(spec.train.batch_size, world, spec.preset)
    if world == 1:
        ranks = Ranks(device=device)
        with distributed.stop_after_the_step(ranks):
            return _train(spec, run, on_iteration, show_progress, ranks)
    follow = _follow_log(run, on_iteration) if on_iteration else None
    try:
        return distributed.launch(
            _train, (spec, run, None, show_progress), world, device.type, poll=follow
        )
    except distributed.RankFailed as exc:
        raise PoseshiftError(f"{exc}; {_resume_hint(run)}") from None


def _train(
    spec: RunSpec,
    run: RunDir,
    on_iteration: Callable[[int, dict], None] | None,
    show_progress: bool,
    ranks: Ranks,
) -> RunResult:
    """The training loop of one rank; rank 0 alone touches the run directory."""
    config, execution = spec.train, spec.execution
    dataset = load_project(spec.project)
    split, membership = resolve_membership(spec, dataset)
    inputs = training_inputs(spec, dataset, membership)
    checkpoint = run.checkpoint

    def finished() -> bool:
        """done.json is there, for this very recipe and data (another run is refused)."""
        if run.is_finished():
            prepare_run_dir(run, spec, inputs, split)
        return run.is_finished()

    if ranks.on_main(finished):
        return RunResult(run.path, config.iterations, finished=True, skipped=True)

    def open_run() -> dict | None:
        prepare_run_dir(run, spec, inputs, split)
        state = _read_checkpoint(checkpoint)
        session = environment(spec, ranks.device, ranks.world)
        run.record_session(session, state["iteration"] if state else None)
        return state

    state = ranks.on_main(open_run)
    train_indices = dataset.indices_of(membership["train"])

    torch.manual_seed(config.seed)
    if state and "config" in state:  # resume: the network the run started with
        model = posenet_from_config(state["config"], str(checkpoint))
    else:
        model = build_posenet(
            spec.backbone,
            len(dataset.bodyparts),
            init=spec.init,
            features=config.features,
            backbone_stride=config.backbone_stride,
        )
        if batchnorm_mode(spec) == "per_image":
            model.normalize_per_image()
    if ranks.is_main:
        run.record_weights(model.origin.to_dict())
    model = model.to(ranks.device)
    if execution.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = _make_optimizer(model, config)
    start = _restore(state, model, optimizer, checkpoint) if state else 0

    canvas = None  # per_image: no canvas
    if config.augment.canvas == "fixed":
        canvas = training_size(config, dataset.image_sizes[train_indices].max(axis=0))
    augment = Augmenter(config.augment, canvas, dataset.bodyparts, stride=model.backbone_stride)
    stream = TrainingStream(dataset, train_indices, augment, config.seed, execution.cache_images)
    loader = training_loader(
        stream,
        config.batch_size,
        start_iteration=start,
        iterations=config.iterations,
        num_workers=execution.num_workers,
        pin_memory=ranks.device.type == "cuda",
        rank=ranks.rank,
        world=ranks.world,
    )
    codec = ScoremapCodec(model.stride, config.pos_dist_thresh, config.locref_stdev)
    step = _make_step(model, optimizer, codec, spec, ranks)
    snapshots = set(config.snapshots) | {config.iterations}

    iteration = saved = start
    mid_step = False  # an interrupt now leaves a half-done step (BatchNorm statistics)
    progress = TrainingProgress(config.iterations, start, enabled=show_progress and ranks.is_main)
    log = TrainingLog(run, start, config.batch_size) if ranks.is_main else None
    try:
        with progress, log or contextlib.nullcontext():
            for images, keypoints, scales in loader:
                ranks.fault_point(iteration)
                lr = learning_rate(config, iteration, spec.init)
                mid_step = True
                losses, stop = ranks.agree(step(images, keypoints, scales, lr))
                iteration, mid_step = iteration + 1, False
                progress.update(iteration, losses["total"])
                if log is not None:
                    if iteration % execution.log_every == 0 or iteration == config.iterations:
                        log.write(iteration, lr, losses)
                    if iteration in snapshots:
                        save_posenet(
                            model,
                            run.snapshot_path(iteration),
                            codec=codec,
                            input_scale=config.test_scale or config.augment.global_scale,
                        )
                    every = execution.checkpoint_every
                    if iteration % every == 0 or iteration == config.iterations:
                        _save_checkpoint(checkpoint, model, optimizer, iteration)
                        saved = iteration
                if on_iteration is not None:
                    on_iteration(iteration, losses)
                if stop and iteration < config.iterations:
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        if mid_step:  # a second Ctrl-C: resume from the last complete checkpoint
            return RunResult(run.path, saved, finished=False)
        if ranks.is_main:
            _save_checkpoint(checkpoint, model, optimizer, iteration)
        return RunResult(run.path, iteration, finished=False)
    if ranks.is_main:
        write_json_atomic(run.done_file, {"iterations": iteration, "snapshots": run.snapshots()})
    return RunResult(run.path, iteration, finished=True)


def _make_step(model, optimizer, codec: ScoremapCodec, spec: RunSpec, ranks: Ranks):
    """One optimization step on this rank's slice of a batch of uint8 images and keypoints."""
    config, device = spec.train, ranks.device
    dtype = autocast_dtype(config.precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
    memory = torch.channels_last if spec.execution.channels_last else torch.contiguous_format
    forward: Callable[..., dict[str, torch.Tensor]] = ranks.parallel(model)
    frozen = batchnorm_mode(spec) == "frozen"
    # The backbone family's layers: the stride-32 upsampling's BatchNorm always trains.
    batchnorm_layers = [
        m for m in model.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    if spec.execution.compile:
        forward = torch.compile(forward)

    radius_in_image = config.pos_dist_units == "image"
    per_image = config.augment.canvas == "per_image"

    def step(
        images: torch.Tensor, keypoints: torch.Tensor, scales: torch.Tensor, lr: float
    ) -> dict[str, float]:
        for group in optimizer.param_groups:
            group["lr"] = lr
        if per_image:
            images = ranks.pad_to_global_batch(images)
        images = images.to(device, non_blocking=True).permute(0, 3, 1, 2)
        images = model.normalize(images).contiguous(memory_format=memory)
        keypoints = keypoints.to(device, non_blocking=True)
        model.train()
        if frozen:  # stored statistics in every forward pass; scale and shift still learn
            for layer in batchnorm_layers:
                layer.eval()
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            outputs = {name: out.float() for name, out in forward(images).items()}
        height, width = outputs["scoremaps"].shape[-2:]
        targets = codec.encode(
            keypoints, (height, width), radius_scale=scales if radius_in_image else None
        )
        losses = ranks.global_loss(pose_loss(outputs, targets, config.locref_loss_weight), targets)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(losses["total"]).backward()
        scaler.step(optimizer)
        scaler.update()
        return {name: float(value.detach()) for name, value in losses.items()}

    return step
