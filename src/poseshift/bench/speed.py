"""Video-inference speed: FPS vs batch size per backbone and frame size (paper Figure 10).

Two numbers per cell. *Model-only*: the network on random normalized input already on the
device, after warm-up, timed between device synchronizations. *End-to-end*: a video file
through the whole ``analyze`` pipeline (decoder thread, resize to size x size, transfer,
network, decoding on the device, poses back on the host). Networks are randomly initialized
(speed does not depend on the weights) with 22 keypoints, as for the paper's horses.

On slow devices a cell that would run longer than ``max_seconds`` is skipped (the estimate
comes from the previous batch size) and marked so in the results, and end-to-end cells use
fewer frames when the clip would take too long.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from poseshift.fsutil import write_atomic
from poseshift.models.codec import ScoremapCodec
from poseshift.models.posenet import PoseNet
from poseshift.predict.frames import probe_video
from poseshift.predict.predictor import Predictor
from poseshift.predict.video import predict_video

MODES = ("model", "video")
DEFAULT_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


@dataclass
class SpeedCell:
    """One measurement; ``fps`` is None when skipped, with the reason in ``note``."""

    backbone: str
    size: int
    batch_size: int
    mode: str  # "model" or "video"
    fps: float | None
    frames: int
    seconds: float
    note: str = ""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_fps(
    predictor: Predictor,
    size: int | tuple[int, int],
    batch_size: int,
    max_seconds: float,
    min_seconds: float,
) -> tuple[float, int, float]:
    """(FPS, frames, seconds) of the network alone on a size x size (or (W, H)) batch.

    FPS uses the median batch time, which shrugs off the stalls a busy shared machine adds.
    """
    device = predictor.device
    width, height = (size, size) if isinstance(size, int) else size
    images = torch.randn(batch_size, 3, height, width, device=device)
    for _ in range(3 if device.type == "cuda" else 1):
        predictor.forward(images)
    _sync(device)
    times: list[float] = []
    while sum(times) < max_seconds and (len(times) < 3 or sum(times) < min_seconds):
        start = time.perf_counter()
        predictor.forward(images)
        _sync(device)
        times.append(time.perf_counter() - start)
    return batch_size / float(np.median(times)), batch_size * len(times), sum(times)


def synthetic_clip(path: Path, frames: int, size: tuple[int, int] = (640, 480)) -> Path:
    """A clip for end-to-end timing when no video is given (openfield's frame size)."""
    rng = np.random.default_rng(0)
    background = rng.integers(0, 200, (size[1], size[0], 3), dtype=np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, size)  # type: ignore[attr-defined]  # missing from OpenCV's stubs
    for i in range(frames):
        frame = background.copy()
        cv2.circle(frame, (40 + (5 * i) % (size[0] - 80), size[1] // 2), 30, (255, 255, 255), -1)
        writer.write(frame)
    writer.release()
    return path


def run_speed_benchmark(
    backbones: Sequence[str],
    sizes: Sequence[int],
    *,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    video: str | Path | None = None,
    frames: int = 300,
    device: str = "auto",
    precision: str = "fp32",
    max_seconds: float = 20.0,
    min_seconds: float = 1.0,
    keypoints: int = 22,
    modes: Sequence[str] = MODES,
    on_cell: Callable[[SpeedCell], None] | None = None,
    compile: bool = False,
) -> list[SpeedCell]:
    """Measure every backbone x size x batch size cell; ``on_cell`` sees each as it lands.

    ``video`` feeds the end-to-end cells (its first ``frames`` frames); without one, a
    synthetic 640x480 clip of ``frames`` frames is written to a temporary folder.
    """
    cells: list[SpeedCell] = []
    with tempfile.TemporaryDirectory(prefix="poseshift-speed-") as tmp:
        if "video" in modes and video is None:
            video = synthetic_clip(Path(tmp) / "synthetic.mp4", frames)
        clip_frames = 0
        if "video" in modes and video is not None:
            clip_frames = min(frames, probe_video(video).frame_count)
        plan = _Plan(video, clip_frames, max_seconds, min_seconds, tuple(modes))
        for backbone in backbones:
            torch.manual_seed(0)
            predictor = Predictor(
                PoseNet(backbone, keypoints),
                ScoremapCodec(),
                device=device,
                precision=precision,
                compile=compile,
            )
            for size in sizes:
                per_frame = 0.0  # seconds per frame at the previous batch size
                for batch in sorted(batch_sizes):
                    row = _measure(predictor, backbone, size, batch, per_frame, plan)
                    for cell in row:
                        if cell.mode in plan.modes:
                            cells.append(cell)
                            if on_cell is not None:
                                on_cell(cell)
                    if row[0].fps is not None:
                        per_frame = 1.0 / row[0].fps
    return cells


@dataclass(frozen=True)
class _Plan:
    """What every cell of one benchmark shares."""

    video: str | Path | None
    clip_frames: int
    max_seconds: float
    min_seconds: float
    modes: tuple[str, ...]


def _measure(
    predictor: Predictor, backbone: str, size: int, batch: int, per_frame: float, plan: _Plan
) -> list[SpeedCell]:
    """The model-only cell, then (if asked for) the end-to-end cell, for one combination.

    The model-only cell is always measured: it sizes the end-to-end run. ``per_frame``:
    seconds per frame at the previous batch size (0: none yet).
    """
    cell = SpeedCell(backbone, size, batch, "model", None, 0, 0.0)
    estimate = per_frame * batch * (2 if predictor.device.type == "cpu" else 4)
    if estimate > plan.max_seconds:
        cell.note = f"skipped: warm-up + one batch ~{estimate:.0f} s > {plan.max_seconds:g} s"
    else:
        cell.fps, cell.frames, cell.seconds = model_fps(
            predictor, size, batch, plan.max_seconds, plan.min_seconds
        )
    if "video" not in plan.modes:
        return [cell]
    e2e = SpeedCell(backbone, size, batch, "video", None, 0, 0.0)
    if cell.fps is None:
        e2e.note = cell.note
    elif batch > plan.clip_frames:
        e2e.note = f"skipped: batch larger than the {plan.clip_frames}-frame clip"
    else:
        budget = max(batch, math.floor(cell.fps * plan.max_seconds / batch) * batch)
        n = min(plan.clip_frames, budget)
        assert plan.video is not None  # end-to-end cells exist only with a clip
        result = predict_video(
            predictor, plan.video, batch_size=batch, resize=(size, size), max_frames=n
        )
        e2e.fps, e2e.frames, e2e.seconds = result.fps, len(result.poses), result.seconds
        if n < plan.clip_frames:
            e2e.note = f"first {n} frames (time limit)"
    return [cell, e2e]


def results_frame(cells: Sequence[SpeedCell], **context: object) -> pd.DataFrame:
    """One row per cell plus constant ``context`` columns (device, precision, video...)."""
    frame = pd.DataFrame([asdict(c) for c in cells], columns=list(SpeedCell.__annotations__))
    for key, value in context.items():
        frame[key] = value
    return frame


def write_results(frame: pd.DataFrame, out_dir: str | Path) -> tuple[Path, Path]:
    """``speed.csv`` and the Figure 10-style ``speed.png`` in ``out_dir``."""
    from poseshift.bench.figures import plot_speed

    out_dir = Path(out_dir)
    csv = write_atomic(out_dir / "speed.csv", lambda tmp: frame.to_csv(tmp, index=False))
    png = plot_speed(frame, out_dir / "speed.png")
    return csv, png


def comparison_table(frame: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    """Paper Table 1 (batch 1) / Table 2 (batch 256) layout: our FPS next to the paper's.

    Rows are backbones; per frame size, columns ``<size> model`` and ``<size> video`` (ours)
    and ``<size> paper`` (GPU, see ``bench.paper``). Cells are display strings: FPS, "skipped",
    "?" (the paper's cell is illegible) or "-" (not measured / not in the paper).
    """
    from poseshift.bench.paper import PAPER_FPS, paper_fps

    rows = {}
    for backbone in dict.fromkeys(frame["backbone"]):
        row = {}
        for size in sorted(set(frame["size"])):
            for mode in MODES:
                hit = frame[
                    (frame["backbone"] == backbone)
                    & (frame["size"] == size)
                    & (frame["batch_size"] == batch_size)
                    & (frame["mode"] == mode)
                ]
                row[f"{size} {mode}"] = _fps_text(hit["fps"].iloc[0]) if len(hit) else "-"
            paper = paper_fps(backbone, size, batch_size)
            in_table = backbone in PAPER_FPS.get(batch_size, {}) and size in (128, 256, 512)
            row[f"{size} paper"] = str(paper) if paper else ("?" if in_table else "-")
        rows[backbone] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def _fps_text(fps: float | None) -> str:
    if fps is None or pd.isna(fps):
        return "skipped"
    return f"{fps:.1f}" if fps < 100 else f"{fps:.0f}"
