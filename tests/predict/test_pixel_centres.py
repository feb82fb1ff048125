"""Poses of resized frames come back on the pixels they mark (no half-pixel bias).

A stand-in network returns the intensity centroid of its input, in input pixels with integer
pixel centres: what training teaches (albumentations' Affine moves labels with the matrix that
warps the image). cv2.resize's area averaging keeps that centroid on the same spot of the
scene, so a correct inverse maps it back onto the blob drawn in the original frame.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from poseshift.models.codec import ScoremapCodec
from poseshift.predict.predictor import Predictor
from poseshift.predict.video import predict_video

WIDTH, HEIGHT = 128, 96
BLOB = (53.3, 41.7)  # where the blob's centre lies in original pixels


class Centroid(nn.Module):
    """Scoremap peak and locref offset at the intensity centroid of each input image."""

    num_keypoints = 1
    backbone_stride = 16  # the predictor pads its inputs to this multiple, as for a PoseNet

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return images.float()

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        b, _, h, w = images.shape
        weight = images[:, 0].double()
        ys, xs = (torch.arange(n, dtype=torch.float64) for n in (h, w))
        ys, xs = ys[:, None], xs[None, :]
        x = (weight * xs).sum((1, 2)) / weight.sum((1, 2))
        y = (weight * ys).sum((1, 2)) / weight.sum((1, 2))
        codec = ScoremapCodec()
        maps = torch.full((b, 1, -(-h // codec.stride), -(-w // codec.stride)), -10.0)
        locref = torch.zeros(b, 2, *maps.shape[2:])
        for i in range(b):
            row, col = int(y[i] // codec.stride), int(x[i] // codec.stride)
            maps[i, 0, row, col] = 10.0
            centre = (col * codec.stride + codec.stride / 2, row * codec.stride + codec.stride / 2)
            locref[i, 0] = (x[i] - centre[0]) / codec.locref_stdev
            locref[i, 1] = (y[i] - centre[1]) / codec.locref_stdev
        return {"scoremaps": maps, "locref": locref}


def blob_frame() -> np.ndarray:
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    blob = 255 * np.exp(-((xs - BLOB[0]) ** 2 + (ys - BLOB[1]) ** 2) / (2 * 5.0**2))
    return np.repeat(blob[..., None], 3, axis=2).round().astype(np.uint8)


@pytest.fixture
def predictor() -> Predictor:
    return Predictor(Centroid(), ScoremapCodec(), input_scale=0.5, device="cpu", compile=False)


def test_a_known_point_comes_back_unbiased_at_scale_half(predictor: Predictor) -> None:
    assert predictor.input_size(WIDTH, HEIGHT) == (64, 48)
    [[x, y, _]] = predictor.predict_frames([blob_frame()])[0]
    assert x == pytest.approx(BLOB[0], abs=0.05) and y == pytest.approx(BLOB[1], abs=0.05)


@pytest.mark.parametrize("resize", [None, (32, 48)])  # scale 0.5; 1/4 across, 1/2 down
def test_video_poses_come_back_unbiased(
    predictor: Predictor, tmp_path: Path, resize: tuple[int, int] | None
) -> None:
    path = tmp_path / "blob.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (WIDTH, HEIGHT))
    for _ in range(3):
        writer.write(cv2.cvtColor(blob_frame(), cv2.COLOR_RGB2BGR))
    writer.release()
    poses = predict_video(predictor, path, batch_size=2, resize=resize).poses
    np.testing.assert_allclose(poses[:, 0, :2], np.tile(BLOB, (3, 1)), atol=0.05)


def test_frames_reach_the_network_on_the_training_grid() -> None:
    """TensorFlow-padded networks place their feature grid by each stride-2 layer's input
    parity; training crops are multiples of 16, so a 40-row frame must be seen as those
    40 rows over black up to 48 (as training pads), not as a 40-row input."""
    from poseshift.models.posenet import build_posenet

    torch.manual_seed(0)
    model = build_posenet("mobilenetv2_035", 2, init="scratch")
    assert model.origin.padding == "same"
    predictor = Predictor(model, ScoremapCodec(model.stride), device="cpu", precision="fp32")
    frame = np.random.default_rng(0).integers(0, 255, (40, 48, 3), np.uint8)
    canvas = np.zeros((48, 48, 3), np.uint8)
    canvas[:40] = frame
    poses = [predictor.predict_frames([f]) for f in (frame, canvas)]
    np.testing.assert_allclose(poses[0], poses[1], atol=1e-4)
