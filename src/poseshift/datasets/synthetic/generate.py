"""A synthetic Horse-10: quadrupeds walking through their own scenes, with real domain shift.

Each individual (one "video" folder) is a horse with its own coat, markings and proportions
in its own scene (ground and backdrop, lighting, shadow, a handler, clutter in coat-like
colours), walking left to right with a walk gait. Every frame is drawn from a style vector
in [0, 1]^D (``STYLE``)::

    style = shift * own + (1 - shift) * shared + jitter

``own`` is drawn once per individual and ``shared`` once per frame, both from the same wide
prior. At ``domain_shift=1`` an individual covers a small corner of the prior, so ten training
individuals cannot cover the other twenty (the Horse-10 situation); at 0 the frames of every
individual cover the whole prior and out-of-domain is within-domain. Pose, position and
distance vary per frame at any shift. Looks live in
:mod:`~poseshift.datasets.synthetic.look`, anatomy and gait in
:mod:`~poseshift.datasets.synthetic.horse`, drawing in :mod:`~poseshift.datasets.synthetic.render`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import yaml

from poseshift.data.project import PoseDataset, write_project
from poseshift.datasets.synthetic.horse import BODYPARTS, SKELETON, horse_points
from poseshift.datasets.synthetic.look import frame_styles, make_look
from poseshift.datasets.synthetic.render import Frame, render_frame
from poseshift.errors import PoseshiftError
from poseshift.fsutil import write_text_atomic

SCORER = "synth"


def render_individual(
    seed: int, index: int, n_frames: int, size: tuple[int, int], domain_shift: float
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(RGB image, keypoints (22, 2) with NaN outside the image) for each frame of one horse.

    Seeded by ``(seed, index)`` only, so an individual is the same however many are made.
    """
    width, height = size
    rng = np.random.default_rng([seed, index])
    styles = frame_styles(rng, n_frames, domain_shift)
    times = np.sort(rng.random(n_frames))
    start, end = rng.uniform(-0.1, 0.3), rng.uniform(0.7, 1.1)  # body centre, image widths
    ground, cycles, phase0 = rng.uniform(0.8, 0.95), rng.uniform(6, 10), rng.random()
    for style, t in zip(styles, times, strict=True):
        look = make_look(style)
        phase = (phase0 + cycles * t) % 1.0
        points = horse_points(look, phase, rng.uniform(-0.2, 0.2), rng.uniform(0.25, 0.4))
        frame = Frame(
            points=points,
            scale=look.size * height * rng.uniform(0.92, 1.08),
            origin=np.array([(start + (end - start) * t) * width, ground * height]),
            phase=phase,
            size=size,
        )
        image = render_frame(frame, look, rng)
        keypoints = np.array([frame.to_image(points[name]) for name in BODYPARTS])
        outside = (keypoints < 0).any(axis=1) | (keypoints > [width - 1, height - 1]).any(axis=1)
        keypoints[outside] = np.nan
        yield image, keypoints.astype(np.float32)


def generate(
    out_dir: str | Path,
    *,
    individuals: int = 30,
    frames_per_individual: int = 40,
    size: tuple[int, int] = (288, 162),
    seed: int = 0,
    domain_shift: float = 1.0,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> PoseDataset:
    """Write a synthetic Horse-10-like DeepLabCut project; nothing is left if it fails.

    ``size`` is (width, height). ``progress(i)`` is called after individual ``i`` is written.
    ``force`` replaces a non-empty ``out_dir``.
    """
    out_dir = Path(out_dir)
    _check_arguments(out_dir, individuals, frames_per_individual, size, domain_shift, force)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        images, keypoints, groups = [], [], []
        for index in range(individuals):
            group = f"horse{index:03d}"
            folder = staging / "labeled-data" / group
            folder.mkdir(parents=True)
            frames = render_individual(seed, index, frames_per_individual, size, domain_shift)
            for number, (image, points) in enumerate(frames):
                name = f"labeled-data/{group}/img{number:04d}.png"
                if not cv2.imwrite(str(staging / name), image[..., ::-1]):
                    raise PoseshiftError(f"could not write {out_dir / name}: is the disk full?")
                images.append(name)
                keypoints.append(points)
                groups.append(group)
            if progress is not None:
                progress(index)
        dataset = PoseDataset(
            root=staging,
            scorer=SCORER,
            bodyparts=list(BODYPARTS),
            images=images,
            keypoints=np.stack(keypoints),
            groups=groups,
            image_sizes=np.tile(np.array(size, dtype=np.int64), (len(images), 1)),
            skeleton=list(SKELETON),
            task="synthhorse",
        )
        write_project(dataset, project_path=out_dir)
        settings = {
            "individuals": individuals, "frames_per_individual": frames_per_individual,
            "size": f"{size[0]}x{size[1]}", "seed": seed, "domain_shift": domain_shift,
        }  # fmt: skip
        write_text_atomic(staging / "synth.yaml", yaml.safe_dump(settings, sort_keys=False))
        _move_into_place(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    dataset.root = out_dir
    return dataset


def _check_arguments(
    out_dir: Path, individuals: int, frames: int, size: tuple[int, int], shift: float, force: bool
) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise PoseshiftError(f"{out_dir} is a file; choose a folder for the synthetic project")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise PoseshiftError(
            f"{out_dir} exists and is not empty; choose a new folder or pass --force to replace it"
        )
    if individuals < 1 or frames < 1:
        raise PoseshiftError("--individuals and --frames-per-individual must be at least 1")
    if min(size) < 32:
        raise PoseshiftError(f"--size {size[0]}x{size[1]} is too small; use at least 32x32")
    if not 0.0 <= shift <= 1.0:
        raise PoseshiftError(f"--domain-shift must be between 0 and 1, got {shift}")


def _move_into_place(staging: Path, out_dir: Path) -> None:
    """Rename the finished staging folder onto ``out_dir`` (replacing it when forced)."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        out_dir.rename(old)
    staging.rename(out_dir)
    if old is not None:
        shutil.rmtree(old)


def parse_size(text: str) -> tuple[int, int]:
    """``"288x162"`` -> (288, 162); anything else is a one-line error."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise PoseshiftError(
            f"--size must look like WIDTHxHEIGHT, e.g. 288x162, got {text!r}"
        ) from None
    return width, height
