"""Video decoding for inference: OpenCV in a background thread, batches through a queue.

Decoding is the CPU's job while the accelerator runs the network, so frames are read,
converted to RGB and resized in a thread (OpenCV releases the GIL) and handed over as
ready-made uint8 batches (B, H, W, 3) through a bounded queue; on CUDA they land in pinned
memory so the copy to the device can be asynchronous.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import torch

from poseshift.data.images import resize_frame
from poseshift.errors import PoseshiftError

_END = object()
_FIX = "check that it plays, or re-encode it (ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4)"


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (``frame_count`` may be wrong for damaged files)."""

    path: Path
    width: int
    height: int
    fps: float
    frame_count: int


def probe_video(path: str | Path) -> VideoInfo:
    """Open ``path`` and decode its first frame, so that bad files fail before any work."""
    path = Path(path)
    if not path.is_file():
        raise PoseshiftError(f"video {path} does not exist")
    capture = cv2.VideoCapture(str(path))
    try:
        ok = capture.isOpened() and capture.read()[0]
        if not ok:
            raise PoseshiftError(f"cannot decode video {path}: OpenCV read no frame; {_FIX}")
        return VideoInfo(
            path=path,
            width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            fps=float(capture.get(cv2.CAP_PROP_FPS)),
            frame_count=max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))),
        )
    finally:
        capture.release()


def scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """(W, H) of a ``width`` x ``height`` frame resized by ``scale`` (rounded, at least 1)."""
    return max(1, round(width * scale)), max(1, round(height * scale))


def check_resize(resize: Sequence[int] | None) -> tuple[int, int] | None:
    """A ``--resize`` (W, H) of whole pixels, at least 1 each (checked before any output)."""
    if resize is None:
        return None
    shown = "x".join(str(v) for v in resize)
    if len(resize) != 2 or any(int(v) != v or v < 1 for v in resize):
        raise PoseshiftError(f"--resize must be WIDTHxHEIGHT with both ≥ 1, got {shown}")
    return int(resize[0]), int(resize[1])


def check_batch_size(batch_size: int) -> int:
    """Frames per network batch, at least 1 (checked before any output is touched)."""
    if batch_size < 1:
        raise PoseshiftError(f"--batch-size must be at least 1, got {batch_size}")
    return batch_size


def resize_factor(width: int, height: int, size: tuple[int, int]) -> tuple[float, float]:
    """Original pixels per input pixel, (x, y), of a ``width`` x ``height`` frame at ``size``."""
    return width / size[0], height / size[1]


def to_original_pixels(xy: torch.Tensor, factor: torch.Tensor | Sequence[float]) -> torch.Tensor:
    """Keypoints (B, K, 2) in pixels of frames resized by ``resize_frame`` -> original pixels.

    ``factor`` is ``resize_factor``, (2,) or per frame (B, 2). Integer coordinates are pixel
    centres on both sides, as in the labels and in training (albumentations' Affine moves
    labels with the very matrix that warps the image). cv2.resize puts the centre of output
    pixel i on input pixel (i + 0.5) * f - 0.5, so that is the inverse; plain x * f (dividing
    by the scale) is off by (f - 1) / 2 pixels, 0.5 px at scale 0.5. Results stay in
    original-frame pixels, integers at pixel centres, the frame of DeepLabCut's labels and
    .h5 files, so files exchanged with DeepLabCut need no conversion.
    """
    factor = torch.as_tensor(factor, dtype=xy.dtype, device=xy.device)
    if factor.ndim == 2:
        factor = factor[:, None, :]
    return (xy + 0.5) * factor - 0.5


class FrameBatches:
    """Iterate over uint8 RGB batches (B, H, W, 3) of a video, decoded in a thread.

    ``size`` (W, H) is the network input size; ``max_frames`` stops early (benchmarks).
    Leaving the loop early (an error, Ctrl-C) stops the thread.
    """

    def __init__(
        self,
        path: str | Path,
        batch_size: int,
        size: tuple[int, int],
        max_frames: int | None = None,
        pin_memory: bool = False,
    ) -> None:
        self.path = Path(path)
        self.batch_size = check_batch_size(batch_size)
        self.size = size
        self.max_frames = max_frames
        self.pin_memory = pin_memory
        # Up to 4 batches ahead, fewer for big ones (512 frames of 512² are 400 MB each).
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, min(4, 256 // batch_size)))
        self._stop = threading.Event()

    def __iter__(self) -> Iterator[torch.Tensor]:
        thread = threading.Thread(target=self._decode, name="poseshift-decoder", daemon=True)
        thread.start()
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._stop.set()  # a producer waiting on a full queue gives up within 0.1 s
            thread.join()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _new_batch(self) -> torch.Tensor:
        width, height = self.size
        shape = (self.batch_size, height, width, 3)
        return torch.empty(shape, dtype=torch.uint8, pin_memory=self.pin_memory)

    def _decode(self) -> None:
        capture = cv2.VideoCapture(str(self.path))
        try:
            limit = self.max_frames if self.max_frames is not None else float("inf")
            batch, filled, count = self._new_batch(), 0, 0
            while count < limit and not self._stop.is_set():
                ok, frame = capture.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                batch[filled].numpy()[:] = resize_frame(rgb, self.size)
                filled += 1
                count += 1
                if filled == self.batch_size:
                    if not self._put(batch):
                        return
                    batch, filled = self._new_batch(), 0
            if filled and not self._put(batch[:filled]):
                return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)
        finally:
            capture.release()
