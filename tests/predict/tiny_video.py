"""Helpers for the video tests: a tiny trained run and short synthetic or damaged clips."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import torch

from conftest import make_project, spec_for
from poseshift.train.trainer import train

_RUNS: dict[str, Path] = {}


def tiny_run(tmp_path_factory) -> Path:
    """A 6-iteration MobileNetV2-0.35 run on a generated 3-bodypart project (skeleton Nose-Eye).

    Trained once per session and shared by the test modules (they only add files to it).
    """
    if "run" not in _RUNS:
        root = tmp_path_factory.mktemp("tiny-run")
        make_project(root / "proj", groups=2, frames=3)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # 4x faster than 2 threads on two busy shared cores
        try:
            train(spec_for(root / "proj"), root / "run", show_progress=False)
        finally:
            torch.set_num_threads(threads)
        _RUNS["run"] = root / "run"
    return _RUNS["run"]


def write_video(path: Path, frames: int = 12, size: tuple[int, int] = (64, 48)) -> Path:
    """An mp4v clip of a bright disc moving over noise (so predictions vary per frame)."""
    width, height = size
    rng = np.random.default_rng(len(path.name) + frames)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, size)
    for i in range(frames):
        image = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
        cv2.circle(image, (8 + 3 * i % (width - 16), height // 2), 6, (255, 255, 255), -1)
        writer.write(image)
    writer.release()
    return path


def cut_mdat(source: Path, target: Path, keep: float = 0.5) -> Path:
    """An mp4 whose frame data stops part-way but whose index (moov) is intact.

    The container still claims every frame; decoding stops where the data ends, like a
    recording whose last part was lost. (Cutting the file's tail instead removes the moov
    atom, which leaves nothing readable.)
    """
    data = source.read_bytes()
    mdat = data.find(b"mdat") - 4
    moov = data.find(b"moov") - 4
    assert 0 < mdat < moov, "expected mdat before moov (OpenCV's mp4 muxer)"
    cut = mdat + 8 + int((moov - mdat - 8) * keep)
    header = struct.pack(">I", cut - mdat)
    target.write_bytes(data[:mdat] + header + data[mdat + 4 : cut] + data[moov:])
    return target


def read_frames(path: Path) -> list[np.ndarray]:
    """Every decodable frame, RGB."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames
