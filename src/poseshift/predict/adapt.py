"""Test-time adaptation without labels: BatchNorm statistics re-estimated on target frames.

AdaBN (Li et al. 2016; Schneider et al., NeurIPS 2020, "Improving robustness against common
corruptions by covariate shift adaptation"): a network's BatchNorm layers normalize with the
mean and variance of its training data; on a new animal, scene or camera those statistics
are off. ``adapt_batchnorm`` runs the network on unlabeled target frames (resized and padded
exactly as at inference, ``predictor.network_input``) and replaces every BatchNorm layer's
running mean and variance by those of its inputs over all target frames together (each
batch weighted by its size, so a leftover batch of one frame counts as one frame); with
``prior`` N > 0 it keeps a share N / (N + n) of the stored statistics for n target frames
(Schneider et al.'s source prior). No weight changes.

What happens where there is nothing sensible to adapt:

* a network without BatchNorm layers tracking running statistics: refused in one line;
* a run trained with frozen BatchNorm (recipe ``batchnorm: {family: frozen}``, the ``paper``
  preset for ResNets and EfficientNets): its stored statistics are those of the initial
  weights (ImageNet's, or a fresh layer's 0 / 1 from scratch), never its training data's, so
  the layers after them learned to expect exactly those. Re-estimating them on the target
  changes the function training produced, not a covariate shift of it. Refused by default
  with one line; ``frozen="adapt"`` adapts anyway (``benchmarks/adapt.md`` measures it).

``adapt_run`` makes a new run directory through ``RunDir.create_adapted``: the source run's
recipe and split, the adapted snapshot under the same iteration, and ``adaptation.json``
naming the source run and snapshot (with sha256), the target frames (paths, sizes, sha256,
frame indices) and the options; an existing adapted run is reused only for the same record.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from poseshift.data.images import resize_frame
from poseshift.device import pick_device
from poseshift.errors import PoseshiftError
from poseshift.models.backbones import get_backbone
from poseshift.models.posenet import PoseNet, read_snapshot, save_posenet
from poseshift.predict.frames import scaled_size
from poseshift.predict.predictor import network_input
from poseshift.predict.target_frames import TargetFrames, sha256_file
from poseshift.run import RunDir
from poseshift.spec import batchnorm_mode

FROZEN_POLICIES = ("refuse", "adapt")


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers whose running statistics normalize at inference."""
    return [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]


class _Moments:
    """Per-channel moments of one BatchNorm layer's inputs, summed over the batches it saw."""

    def __init__(self) -> None:
        self.count = 0  # values per channel: frames x pixels
        self.total = torch.zeros((), dtype=torch.float64)  # a 0-d CPU tensor adds to CUDA ones
        self.squares = torch.zeros((), dtype=torch.float64)

    def add(self, _layer: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        x = args[0]
        var, mean = torch.var_mean(x, dim=[0, *range(2, x.dim())], correction=0)
        n = x.numel() // x.shape[1]
        # float64 sums: E[x^2] - E[x]^2 stays exact enough over thousands of frames
        self.count += n
        self.total = self.total + n * mean.double()
        self.squares = self.squares + n * (var.double() + mean.double() ** 2)

    def mean_var(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and unbiased variance, as BatchNorm stores them."""
        mean = self.total / self.count
        var = (self.squares / self.count - mean**2).clamp_min(0)
        return mean, var * self.count / max(self.count - 1, 1)


@torch.no_grad()
def adapt_batchnorm(
    model: PoseNet,
    frames: Iterable[np.ndarray],
    *,
    input_scale: float = 1.0,
    batch_size: int = 16,
    prior: float = 0.0,
    device: torch.device | None = None,
) -> int:
    """Replace the running statistics of ``model``'s BatchNorm layers by the frames' (AdaBN).

    Frames (RGB uint8, any sizes) are resized by ``input_scale`` and batched by size. As in
    AdaBN, each batch is normalized by its own statistics on the way through; each layer's new
    statistics are the mean and variance of its inputs over all batches, weighted by their
    values (frames x pixels), then blended with the stored ones by ``prior / (prior + n)`` for
    n frames. The first layer's are thus independent of the batching; deeper layers' inputs
    still depend on it through the batches' normalization. Returns n. The model is left in
    eval mode; on an error its statistics are unchanged.
    """
    layers = batchnorm_layers(model)
    if not layers:
        raise PoseshiftError(
            f"the {model.backbone_name} network has no BatchNorm layers with running "
            "statistics (or it normalizes each image by its own: batchnorm per_image): "
            "there is nothing to adapt; use the run as it is"
        )
    if prior < 0:
        raise PoseshiftError(f"--prior {prior}: give a number of source frames >= 0")
    device = device or next(model.parameters()).device
    model.eval().to(device)
    moments = [_Moments() for _ in layers]
    hooks = [m.register_forward_pre_hook(acc.add) for m, acc in zip(layers, moments, strict=True)]
    for layer in layers:
        layer.train()
        layer.track_running_stats = False  # batch statistics, stored ones left untouched
    pending: dict[tuple[int, int], list[np.ndarray]] = defaultdict(list)
    count = 0

    def run(batch: list[np.ndarray]) -> None:
        model(network_input(model, torch.from_numpy(np.stack(batch)).to(device)))

    try:
        for frame in frames:
            size = scaled_size(frame.shape[1], frame.shape[0], input_scale)
            pending[size].append(resize_frame(frame, size))
            count += 1
            if len(pending[size]) == batch_size:
                run(pending.pop(size))
        for batch in pending.values():
            run(batch)
    finally:
        for hook in hooks:
            hook.remove()
        for layer in layers:
            layer.track_running_stats = True
            layer.eval()
    if count == 0:
        raise PoseshiftError("no target frame could be decoded: nothing to adapt on")
    keep = prior / (prior + count)
    for layer, acc in zip(layers, moments, strict=True):
        if acc.count == 0:  # a layer the forward pass skips keeps what it had
            continue
        pairs = zip((layer.running_mean, layer.running_var), acc.mean_var(), strict=True)
        for stored, target in pairs:
            if keep:
                target = (1 - keep) * target + keep * stored.double()  # type: ignore[union-attr]
            stored.copy_(target)  # type: ignore[union-attr]
    return count


def frozen_families(run: RunDir) -> str | None:
    """The recipe's ``batchnorm.<family>: frozen`` entry for the run's backbone, if any."""
    spec = run.spec()
    return get_backbone(spec.backbone).family if batchnorm_mode(spec) == "frozen" else None


def adapt_run(
    run_dir: str | Path,
    frames: str | Path | TargetFrames,
    out: str | Path,
    *,
    snapshot: str | int = "last",
    max_frames: int = 500,
    batch_size: int = 16,
    prior: float = 0.0,
    frozen: str = "refuse",
    device: str = "auto",
    overwrite: bool = False,
) -> RunDir:
    """A new run ``out``: ``run_dir``'s snapshot with BatchNorm adapted to ``frames``.

    Everything is checked before any work: the run and snapshot, the frames (each decoded),
    the frozen-BatchNorm policy, and ``out`` (an existing adapted run of the very same
    record is returned as it is; another adapted run needs ``overwrite``; any other existing
    directory is refused).
    """
    source, target = RunDir(run_dir), RunDir(out)
    if frozen not in FROZEN_POLICIES:
        raise PoseshiftError(f"--frozen-batchnorm {frozen!r}: give one of {FROZEN_POLICIES}")
    iteration = source.choose_snapshot(snapshot)
    family = frozen_families(source)
    if family and frozen == "refuse":
        raise PoseshiftError(
            f"{source.path} trained with frozen BatchNorm (recipe batchnorm.{family}: frozen): "
            "its statistics are the initial weights', not its training data's, so AdaBN has "
            "no source statistics to correct; pass --frozen-batchnorm adapt to re-estimate "
            "them on the target anyway (see benchmarks/adapt.md)"
        )
    if not isinstance(frames, TargetFrames):
        frames = TargetFrames.open(frames, max_frames=max_frames)
    snapshot_file = source.snapshot_path(iteration)
    record = {
        "source_run": str(source.path.resolve()),
        "source_scorer": source.scorer(iteration),
        "snapshot": {
            "iteration": iteration,
            "path": str(snapshot_file.resolve()),
            "sha256": sha256_file(snapshot_file),
        },
        "frames": frames.identity(),
        "method": "adabn",
        "prior": float(prior),
        "batch_size": int(batch_size),
        "frozen_batchnorm": family is not None,
    }
    if target.path.resolve() == source.path.resolve():
        raise PoseshiftError(f"--out {target.path} is the run itself; give a new folder")
    if target.path.exists():
        stored = target.adaptation()
        if stored is not None and {k: v for k, v in stored.items() if k != "result"} == record:
            return target
        if stored is None and any(target.path.iterdir()):
            raise PoseshiftError(
                f"--out {target.path} exists and is not an adapted run; give a new folder"
            )
        if stored is not None and not overwrite:
            raise PoseshiftError(
                f"--out {target.path} holds a run adapted from other frames or options; give "
                "a new folder, or --overwrite to replace it"
            )
    loaded = read_snapshot(snapshot_file)
    count = adapt_batchnorm(
        loaded.model,
        frames,
        input_scale=loaded.input_scale,
        batch_size=batch_size,
        prior=prior,
        device=pick_device(device),
    )
    record["result"] = {
        "frames_decoded": count,
        "batchnorm_layers": len(batchnorm_layers(loaded.model)),
    }

    def write(staging: RunDir) -> None:
        save_posenet(
            loaded.model.cpu(),
            staging.snapshot_path(iteration),
            codec=loaded.codec,
            input_scale=loaded.input_scale,
        )

    target.create_adapted(source, record, write)
    return target
