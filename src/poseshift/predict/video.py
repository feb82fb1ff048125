"""Fast video inference with DeepLabCut-compatible outputs.

``analyze_videos`` mirrors DeepLabCut's ``analyze_videos``: per video it writes
``<video stem><scorer>.h5`` (key ``df_with_missing``, integer index 0..N-1,
columns scorer / bodyparts / coords), the same table as ``.csv``, and
``<video stem><scorer>_meta.pickle`` (``{"data": {...}}``, which DeepLabCut's labeled-video
and plotting tools read for fps, frame size and cropping). The pipeline: a decoder thread
feeds uint8 batches (``poseshift.predict.frames``), the network runs under
``torch.inference_mode`` (channels_last; autocast where asked; asynchronous copies from
pinned memory on CUDA) and poses are decoded on the device; only (B, K, 3) poses come back.

On the CPU the network is compiled by default (``torch.compile`` with Inductor's freezing:
BatchNorm folded into the convolutions, fused activations, weights prepacked for oneDNN):
the same fp32 poses, 1.1-1.9x faster on a 2-core CPU (benchmarks/analyze_vs_dlc3.md). It
costs one compilation per video size (seconds; cached on disk by torch), done before the
clock starts, and falls back to eager mode with a warning where compilation is impossible.

``VideoPredictor`` is the reusable part for benchmarks: give it any ``PoseNet``.
"""

from __future__ import annotations

import pickle
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from poseshift.errors import PoseshiftError
from poseshift.fsutil import file_identity, write_atomic
from poseshift.models.codec import ScoremapCodec
from poseshift.models.posenet import PoseNet, load_posenet
from poseshift.predict.frames import FrameBatches, VideoInfo, probe_video, scaled_size
from poseshift.predict.outputs import (
    check_outputs,
    forget_source,
    is_reusable,
    poses_frame,
    record_source,
    write_poses,
)
from poseshift.train.identity import run_hash
from poseshift.train.trainer import (
    RunSpec,
    autocast_dtype,
    list_snapshots,
    pick_device,
    read_membership,
    read_spec,
    snapshot_path,
)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class VideoPoses:
    """Poses (N, K, 3) = x, y, likelihood in original video pixels, one row per decoded frame."""

    poses: np.ndarray
    info: VideoInfo
    input_size: tuple[int, int]  # (W, H) the network saw
    seconds: float  # wall time from the first decoded frame to the last pose on the host

    @property
    def fps(self) -> float:
        return len(self.poses) / max(self.seconds, 1e-9)


def check_precision(precision: str) -> str:
    """Reject a typo before any work starts."""
    if precision not in PRECISIONS:
        raise PoseshiftError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def inference_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype analysis uses: "auto" on the CPU is fp32, else as in training."""
    if precision == "auto" and device.type == "cpu":
        # bf16 moves some keypoints by more than 2 px on CPU (benchmarks/): exact by default.
        precision = "fp32"
    return autocast_dtype(precision, device)


class VideoPredictor:
    """A loaded network ready to run on videos; build it once, call ``predict`` per video."""

    def __init__(
        self,
        model: PoseNet,
        codec: ScoremapCodec,
        device: str | torch.device = "auto",
        precision: str = "auto",
        compile: bool | None = None,
    ) -> None:
        check_precision(precision)
        self.device = pick_device(device) if isinstance(device, str) else device
        self.dtype = inference_dtype(precision, self.device)
        self.codec = codec
        self.cuda = self.device.type == "cuda"
        # channels_last is faster on CUDA and with oneDNN on CPU alike (benchmarks/).
        self.memory_format = torch.channels_last
        self.model = model.eval().to(self.device, memory_format=self.memory_format)
        # Constants live on the device: a per-batch host-to-device copy would stall CUDA.
        self.mean = torch.tensor(model.mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(model.std, device=self.device).view(1, 3, 1, 1)
        if self.cuda:
            torch.backends.cudnn.benchmark = True  # one input size per video
        # Measured on CPU only; on CUDA compile when asked (compile=True).
        if compile is None:
            compile = self.device.type == "cpu"
        self.network = self.model
        if compile:
            self.network = torch.compile(self.model, dynamic=False, options={"freezing": True})
        self._warm_shapes: set[tuple[int, ...]] = set()

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The network on normalized (B, 3, H, W) images on the device, under autocast."""
        images = images.contiguous(memory_format=self.memory_format)
        with torch.autocast(
            self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None
        ):
            if self.network is self.model:
                return self.model(images)
            try:
                return self.network(images)
            except Exception as exc:  # no C++ compiler, an unsupported operator, ...
                warnings.warn(
                    f"torch.compile failed ({type(exc).__name__}: {str(exc)[:200]}); running "
                    "the network uncompiled (slower); pass compile=False / --no-compile to skip",
                    stacklevel=2,
                )
                self.network = self.model
                return self.model(images)

    def warm_up(self, batch_size: int, size: tuple[int, int]) -> None:
        """Compile for (batch_size, size) now, so that timing and progress exclude it."""
        shape = (batch_size, 3, size[1], size[0])
        if self.network is not self.model and shape not in self._warm_shapes:
            self.forward(torch.zeros(shape, device=self.device))
            self._warm_shapes.add(shape)

    @torch.inference_mode()
    def predict_batch(self, frames: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 frames (any device) to (B, K, 3) poses on the device.

        ``scale`` (2,) float32 on the device maps input pixels back to video pixels. The
        uint8 frames travel to the device (4x less than floats) and are normalized there,
        exactly as ``PoseNet.normalize`` does.
        """
        images = frames.to(self.device, non_blocking=True).permute(0, 3, 1, 2)
        outputs = self.forward((images.float() / 255.0 - self.mean) / self.std)
        return self.codec.decode(outputs["scoremaps"], outputs["locref"], scale=scale)

    def predict(
        self,
        video: str | Path,
        batch_size: int = 8,
        scale: float = 1.0,
        resize: tuple[int, int] | None = None,
        max_frames: int | None = None,
        show_progress: bool = False,
    ) -> VideoPoses:
        """Poses for every decodable frame (or the first ``max_frames``).

        Frames are resized by ``scale`` (the training ``global_scale``) or to ``resize`` (W, H).
        """
        info = probe_video(video)
        size = tuple(resize) if resize else scaled_size(info.width, info.height, scale)
        factor = (info.width / size[0], info.height / size[1])
        scale_t = torch.tensor(factor, dtype=torch.float32, device=self.device)
        batches = FrameBatches(info.path, batch_size, size, max_frames, pin_memory=self.cuda)
        total = info.frame_count if max_frames is None else min(max_frames, info.frame_count)
        chunks = [torch.zeros(0, self.model.num_keypoints, 3, device=self.device)]
        self.warm_up(batch_size, size)
        with _Progress(info.path.name, total, show_progress) as (progress, task):
            start, done = time.perf_counter(), 0
            for batch in batches:
                count = len(batch)
                if count < batch_size:  # a short last batch would cost a second compilation
                    batch = torch.cat([batch, batch[-1:].expand(batch_size - count, -1, -1, -1)])
                chunks.append(self.predict_batch(batch, scale_t)[:count])
                done += count
                progress.update(task, completed=done, fps=done / (time.perf_counter() - start))
            # One synchronizing copy at the end keeps CUDA busy while frames are decoded.
            poses = torch.cat(chunks).float().cpu().numpy()
            seconds = time.perf_counter() - start
        return VideoPoses(poses, info, size, seconds)


class _Progress:
    """A rich progress bar with frames/s, or nothing when disabled (library use, tests)."""

    def __init__(self, name: str, total: int, enabled: bool) -> None:
        self.progress = Progress(
            TextColumn(f"[bold]{name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[fps]:.1f} fps"),
            TimeElapsedColumn(),
            disable=not enabled,
        )
        self.task = self.progress.add_task(name, total=total or None, fps=0.0)

    def __enter__(self) -> tuple[Progress, int]:
        self.progress.__enter__()
        return self.progress, self.task

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)


# ----------------------------------------------------------------------------- run directories


def choose_snapshot(run_dir: Path, snapshot: str | int = "last") -> int:
    """The iteration of ``snapshot`` ("last" or a number), checked against what exists."""
    available = list_snapshots(run_dir)
    if not available:
        raise PoseshiftError(f"{run_dir} has no snapshots (no {run_dir}/snapshots/*.pt)")
    if snapshot == "last":
        return available[-1]
    if int(snapshot) not in available:
        raise PoseshiftError(f"{run_dir} has no snapshot {snapshot}; available: {available}")
    return int(snapshot)


def scorer_name(spec: RunSpec, iteration: int) -> str:
    """DeepLabCut-style scorer (cf. ``DLC_resnet50_openfieldOct30shuffle1_100000``).

    The run's hash stands where DeepLabCut puts task and date: runs that differ only in
    fraction, seed or recipe get different names, so their outputs never collide.
    """
    init = spec.init if spec.init in ("imagenet", "scratch") else "weights"
    return f"poseshift_{spec.backbone}_{init}_{run_hash(spec)}shuffle{spec.shuffle}_{iteration}"


def run_bodyparts(run_dir: Path) -> list[str]:
    """Bodypart names in network-channel order, as stored at training time."""
    return list(read_membership(run_dir)["bodyparts"])


def output_path(video: str | Path, scorer: str, dest: str | Path | None = None) -> Path:
    """Where ``analyze_videos`` writes a video's .h5 (DeepLabCut's naming)."""
    video = Path(video)
    return Path(dest or video.parent) / f"{video.stem}{scorer}.h5"


def load_predictor(
    run_dir: str | Path,
    snapshot: str | int = "last",
    device: str = "auto",
    precision: str = "auto",
    compile: bool | None = None,
) -> tuple[VideoPredictor, RunSpec, int]:
    """A predictor for a run's snapshot, with the run's spec and the snapshot iteration."""
    run_dir = Path(run_dir)
    spec = read_spec(run_dir)
    iteration = choose_snapshot(run_dir, snapshot)
    model = load_posenet(snapshot_path(run_dir, iteration))
    codec = ScoremapCodec(model.stride, spec.train.pos_dist_thresh, spec.train.locref_stdev)
    return VideoPredictor(model, codec, device, precision, compile), spec, iteration


def analyze_videos(
    run_dir: str | Path,
    videos: Sequence[str | Path],
    batch_size: int = 8,
    resize: tuple[int, int] | None = None,
    device: str = "auto",
    dest: str | Path | None = None,
    snapshot: str | int = "last",
    precision: str = "auto",
    overwrite: bool = False,
    show_progress: bool = True,
    compile: bool | None = None,
) -> list[Path]:
    """Write DeepLabCut-compatible poses for each video; return the .h5 paths.

    All videos are checked before the model loads (a bad file fails in seconds, writing
    nothing), the model loads once for all of them, and a video's existing output is reused
    (unless ``overwrite``) only when its record (``<video><scorer>.json``) shows the same
    video file, snapshot file, run and options. A video with fewer decodable frames than its
    container claims is analyzed up to the last good frame, with a warning.
    """
    run_dir = Path(run_dir)
    check_precision(precision)
    spec = read_spec(run_dir)
    iteration = choose_snapshot(run_dir, snapshot)
    bodyparts = run_bodyparts(run_dir)
    infos = [probe_video(v) for v in videos]
    scorer = scorer_name(spec, iteration)
    outputs = [output_path(info.path, scorer, dest) for info in infos]
    check_outputs([i.path for i in infos], outputs, overwrite)
    dtype = inference_dtype(precision, pick_device(device))
    options = {  # what changes the poses (not batch size, not compilation)
        "run": run_hash(spec),
        "snapshot": file_identity(snapshot_path(run_dir, iteration)),
        "autocast": str(dtype).removeprefix("torch.") if dtype else "off",
        "resize": list(resize) if resize else None,
    }
    sources = [{"video": file_identity(i.path), **options} for i in infos]
    todo = [
        (info, out, source)
        for info, out, source in zip(infos, outputs, sources, strict=True)
        if overwrite or not is_reusable(out, source)
    ]
    if not todo:
        return outputs
    predictor, _, _ = load_predictor(run_dir, iteration, device, precision, compile)
    scale = spec.train.augment.global_scale
    for info, out, source in todo:
        forget_source(out)
        started = time.time()
        result = predictor.predict(
            info.path, batch_size, scale=scale, resize=resize, show_progress=show_progress
        )
        if len(result.poses) < info.frame_count:
            warnings.warn(
                f"{info.path}: decoded {len(result.poses)} of {info.frame_count} frames (the "
                "file is truncated or damaged); poses cover the readable frames only",
                stacklevel=2,
            )
        meta = _metadata(spec, scorer, result, batch_size, started, bodyparts)
        write_atomic(
            out.with_name(f"{out.stem}_meta.pickle"),
            lambda tmp, meta=meta: tmp.write_bytes(pickle.dumps(meta, pickle.HIGHEST_PROTOCOL)),
        )
        write_poses(out, poses_frame(scorer, bodyparts, result.poses))
        # The record goes last: it is what marks a video as analyzed from this source.
        record_source(out, source)
    return outputs


def _metadata(
    spec: RunSpec,
    scorer: str,
    result: VideoPoses,
    batch_size: int,
    started: float,
    bodyparts: list[str],
) -> dict:
    """DeepLabCut's ``<video><scorer>_meta.pickle`` content (plain types only)."""
    info = result.info
    return {
        "data": {
            "start": started,
            "stop": time.time(),
            "run_duration": result.seconds,
            "Scorer": scorer,
            "poseshift-run": {
                "backbone": spec.backbone,
                "init": spec.init,
                "project": spec.project,
            },
            "fps": info.fps,
            "batch_size": batch_size,
            "frame_dimensions": (info.width, info.height),
            "nframes": len(result.poses),
            "training set fraction": spec.fraction,
            "cropping": False,
            "cropping_parameters": [0, info.width, 0, info.height],
            "input_size": result.input_size,
            "bodyparts": bodyparts,
        }
    }
