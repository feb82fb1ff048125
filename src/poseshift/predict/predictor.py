"""The one predictor: uint8 frames in, keypoints in original pixels out.

Evaluation (``predict_images``), video analysis (``predict_video``), labeled videos and the
benchmarks all run networks through a ``Predictor``, built from a snapshot alone: the
network, its codec and its preprocessing (input scale, normalization) travel together in
the file (``read_snapshot``). Evaluation numbers therefore come from the very path users run.

The network runs under ``torch.inference_mode`` (channels_last; autocast where asked) and
poses are decoded on the device; only (B, K, 3) poses come back. On the CPU it is compiled
by default (``torch.compile`` with Inductor's freezing: BatchNorm folded into the
convolutions, fused activations, weights prepacked for oneDNN): the same fp32 poses,
1.1-1.9x faster on a 2-core CPU (benchmarks/analyze_vs_dlc3.md). Compilation happens once
per input shape (``warm_up``) and falls back to eager mode with a warning where impossible.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from poseshift.data.images import resize_frame
from poseshift.device import check_precision, dtype_name, inference_dtype, pick_device
from poseshift.errors import PoseshiftError
from poseshift.models.codec import ScoremapCodec
from poseshift.models.head import STRIDE
from poseshift.models.posenet import PoseNet, read_snapshot
from poseshift.predict.frames import (
    check_resize,
    resize_factor,
    scaled_size,
    to_original_pixels,
)
from poseshift.predict.int8 import CompiledQuantized, QuantizedPoseNet, check_int8
from poseshift.run import RunDir


def autocast_name(precision: str, device: torch.device) -> str:
    """How poses are computed, as output records store it: "int8", a dtype, or "off"."""
    return "int8" if precision == "int8" else dtype_name(inference_dtype(precision, device))


class Predictor:
    """A loaded network ready to predict; build it once, call it per batch."""

    def __init__(
        self,
        model: PoseNet,
        codec: ScoremapCodec,
        *,
        input_scale: float = 1.0,
        device: str | torch.device = "auto",
        precision: str = "auto",
        compile: bool | None = None,
    ) -> None:
        check_precision(precision, inference=True)
        self.device = pick_device(device) if isinstance(device, str) else device
        self.dtype = inference_dtype(precision, self.device)
        self.autocast = autocast_name(precision, self.device)
        if compile is None:  # measured on CPU only; on CUDA compile when asked
            compile = self.device.type == "cpu"
        # int8: the backbone is quantized per video (``predict.int8.calibrate_on_video``).
        self.int8 = precision == "int8"
        if self.int8:
            check_int8(self.device, compile)
        self.codec = codec
        self.input_scale = input_scale
        self.cuda = self.device.type == "cuda"
        # channels_last is faster on CUDA and with oneDNN on CPU alike (benchmarks/).
        self.memory_format = torch.channels_last
        self.model = model.eval().to(self.device).to(memory_format=self.memory_format)
        if self.cuda:
            torch.backends.cudnn.benchmark = True  # one input size per video
        self.network: Callable[..., dict[str, torch.Tensor]] = self.model
        if compile and not self.int8:
            self.network = torch.compile(self.model, dynamic=False, options={"freezing": True})
        self._warm_shapes: set[tuple[int, ...]] = set()

    @classmethod
    def from_snapshot(
        cls,
        path: str | Path,
        *,
        fallback: tuple[ScoremapCodec, float] | None = None,
        device: str | torch.device = "auto",
        precision: str = "auto",
        compile: bool | None = None,
    ) -> Predictor:
        """The predictor of a snapshot file (``fallback``: codec and scale of old files)."""
        snapshot = read_snapshot(path, fallback=fallback)
        return cls(
            snapshot.model,
            snapshot.codec,
            input_scale=snapshot.input_scale,
            device=device,
            precision=precision,
            compile=compile,
        )

    @property
    def num_keypoints(self) -> int:
        return self.model.num_keypoints

    def input_size(
        self, width: int, height: int, resize: tuple[int, int] | None = None
    ) -> tuple[int, int]:
        """(W, H) the network sees for a frame: ``resize`` if given, else the input scale."""
        return check_resize(resize) or scaled_size(width, height, self.input_scale)

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The network on normalized (B, 3, H, W) images on the device, under autocast."""
        images = images.contiguous(memory_format=self.memory_format)
        if self.int8 and self.network is self.model:
            raise PoseshiftError(
                "precision int8 is for video analysis (poseshift analyze), where the video's "
                "first frames calibrate it; use fp32 or bf16 here"
            )
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
                self.int8 = False  # the fp32 network now
                return self.model(images)

    def use_quantized(self, network: QuantizedPoseNet) -> None:
        """Run ``network`` (an int8 backbone with the fp32 head) from now on, compiled."""
        self.network = CompiledQuantized(network)
        self._warm_shapes.clear()

    def warm_up(self, batch_size: int, size: tuple[int, int]) -> None:
        """Compile for (batch_size, size) now, so that timing and progress exclude it."""
        frames = torch.zeros((batch_size, size[1], size[0], 3), dtype=torch.uint8)
        images = self.network_input(frames)
        if self.network is not self.model and images.shape not in self._warm_shapes:
            self.forward(images)
            self._warm_shapes.add(images.shape)

    def network_input(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 frames as the network's input on the device (``network_input``)."""
        images = network_input(self.model, frames.to(self.device, non_blocking=True))
        return images.contiguous(memory_format=self.memory_format)

    @torch.inference_mode()
    def predict_batch(self, frames: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 frames already at input size to (B, K, 3) poses on the device.

        ``scale`` (2,) or (B, 2) is the ``resize_factor`` of the frames, which
        ``to_original_pixels`` undoes. The uint8 frames travel to the device (4x less than
        floats) and are normalized there.
        """
        outputs = self.forward(self.network_input(frames))
        poses = self.codec.decode(outputs["scoremaps"], outputs["locref"])
        return torch.cat((to_original_pixels(poses[..., :2], scale), poses[..., 2:]), dim=-1)

    def predict_frames(self, frames: list[np.ndarray]) -> np.ndarray:
        """(N, K, 3) poses in original pixels for same-sized RGB uint8 frames of any size."""
        height, width = frames[0].shape[:2]
        size = self.input_size(width, height)
        batch = np.stack([resize_frame(f, size) for f in frames])
        factor = torch.tensor(resize_factor(width, height, size), device=self.device)
        poses = self.predict_batch(torch.from_numpy(batch), factor)
        return poses.float().cpu().numpy()


def network_input(model: PoseNet, frames: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) uint8 frames as ``model``'s normalized (B, 3, H', W') input, padded with
    black on the right and bottom to a multiple of the backbone stride.

    Why: with TensorFlow "SAME" padding a stride-2 layer pads by its input's parity, which
    places the feature grid; training crops are multiples of 16, so a 288x162 frame fed as is
    would shift the grid (and every prediction) by 14 px. Top-left anchored: the decoded
    coordinates need no change. Prediction and AdaBN both feed networks through here.
    """
    images = frames.permute(0, 3, 1, 2)
    height, width = images.shape[-2:]
    multiple = model.backbone_stride
    images = F.pad(images, (0, -width % multiple, 0, -height % multiple))
    return model.normalize(images)


def run_predictor(
    run: RunDir,
    iteration: int,
    *,
    device: str | torch.device = "auto",
    precision: str = "auto",
    compile: bool | None = None,
) -> Predictor:
    """The predictor of a run's snapshot (snapshots of older versions: the run's recipe)."""
    recipe = run.spec().train
    fallback = (
        ScoremapCodec(STRIDE, recipe.pos_dist_thresh, recipe.locref_stdev),
        recipe.augment.global_scale,
    )
    return Predictor.from_snapshot(
        run.snapshot_path(iteration),
        fallback=fallback,
        device=device,
        precision=precision,
        compile=compile,
    )
