"""Labels read from another tool, and the one writer that turns them into a project.

Every reader (Lightning Pose, SLEAP, NWB, Label Studio, YOLO, COCO) yields
``ImportedLabels``: bodyparts in the source's order, the skeleton as name pairs, and one
``ImportedFrame`` per labeled image with its group, file name and where its pixels come from
(a file to copy, or a decoder of a video or embedded frame). ``write_imported`` checks all of
it before anything is written (names, duplicates, skeleton names, NaN-only labels, a
destination that is empty), stages the project in a hidden sibling folder and renames it
into place: a failure leaves nothing behind.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from poseshift.data.images import image_size
from poseshift.data.project import PoseDataset, write_project
from poseshift.errors import PoseshiftError
from poseshift.fsutil import check_output_dir, safe_child


@dataclass
class ImportedFrame:
    """One labeled image: ``labeled-data/<group>/<name>`` in the new project."""

    group: str
    name: str
    keypoints: np.ndarray  # (K, 2) float32, NaN = unlabeled
    copy_from: Path | None = None  # an image file, copied unchanged
    pixels: Callable[[], np.ndarray] | None = None  # else decoded: (H, W) or (H, W, 1|3) RGB

    @property
    def relative(self) -> str:
        return f"labeled-data/{self.group}/{self.name}"


@dataclass
class ImportedLabels:
    source: Path  # what the labels came from, for messages
    scorer: str
    bodyparts: list[str]
    frames: list[ImportedFrame]
    skeleton: list[tuple[str, str]] = field(default_factory=list)
    task: str = "imported"
    videos: list[tuple[str, tuple[int, int]]] = field(default_factory=list)  # real files
    scorer_key: str = "scorer"  # where the source keeps the scorer, for messages


def check_imported(labels: ImportedLabels, out_project: Path) -> None:
    """Everything that could fail after the first write, checked before it."""
    where = f"{labels.source}"
    check_output_dir(out_project, "output project")  # e.g. a path below an existing file
    if out_project.exists() and (not out_project.is_dir() or any(out_project.iterdir())):
        raise PoseshiftError(f"{out_project} exists and is not empty; choose a new folder")
    safe_child(out_project, f"CollectedData_{labels.scorer}", f"{where}: {labels.scorer_key}")
    repeated = [name for i, name in enumerate(labels.bodyparts) if name in labels.bodyparts[:i]]
    if repeated:
        raise PoseshiftError(f"{where}: bodypart {repeated[0]!r} is listed twice")
    for a, b in labels.skeleton:
        unknown = next((n for n in (a, b) if n not in labels.bodyparts), None)
        if unknown is not None:
            raise PoseshiftError(
                f"{where}: skeleton edge ({a}, {b}) names {unknown!r}, which is not one of the "
                f"{len(labels.bodyparts)} bodyparts; fix the skeleton in the source"
            )
    if not labels.frames:
        raise PoseshiftError(f"{where} has no labeled frame: there is nothing to import")
    if all(np.isnan(frame.keypoints).all() for frame in labels.frames):
        raise PoseshiftError(
            f"{where}: all {len(labels.frames)} frames have only unlabeled (NaN) keypoints; "
            "there is nothing to train or evaluate"
        )
    labeled = out_project / "labeled-data"
    taken: dict[str, int] = {}
    for index, frame in enumerate(labels.frames):
        what = f"{where}: frame {index + 1}"
        folder = safe_child(labeled, frame.group, f"{what} group")
        safe_child(folder, frame.name, f"{what} image name")
        if frame.relative in taken:
            raise PoseshiftError(
                f"{where}: frames {taken[frame.relative] + 1} and {index + 1} both become "
                f"{frame.relative}; the source labels one image twice"
            )
        taken[frame.relative] = index
        if frame.keypoints.shape != (len(labels.bodyparts), 2):
            raise PoseshiftError(
                f"{what} has {len(frame.keypoints)} keypoints, not {len(labels.bodyparts)}"
            )
        if frame.copy_from is not None and not frame.copy_from.is_file():
            raise PoseshiftError(
                f"{where}: image {frame.copy_from} is missing; put it back or import from the "
                "folder that holds the images"
            )


def _place(frame: ImportedFrame, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if frame.copy_from is not None:
        shutil.copy2(frame.copy_from, target)
        return
    assert frame.pixels is not None
    image = np.asarray(frame.pixels())
    if image.ndim == 3 and image.shape[2] == 3:
        image = image[..., ::-1]  # RGB -> BGR for OpenCV
    if not cv2.imwrite(str(target), np.ascontiguousarray(image)):
        raise PoseshiftError(f"could not write {target}: is the disk full?")


def write_imported(labels: ImportedLabels, out_project: str | Path) -> PoseDataset:
    """Create the DeepLabCut project ``out_project`` from ``labels``; nothing is left on failure."""
    out_project = Path(out_project)
    check_imported(labels, out_project)
    out_project.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_project.name}.", dir=out_project.parent))
    try:
        for frame in labels.frames:
            _place(frame, staging / frame.relative)
        dataset = PoseDataset(
            root=staging,
            scorer=labels.scorer,
            bodyparts=list(labels.bodyparts),
            images=[frame.relative for frame in labels.frames],
            keypoints=np.stack([f.keypoints for f in labels.frames]).astype(np.float32),
            groups=[frame.group for frame in labels.frames],
            image_sizes=np.array(
                [image_size(staging / f.relative) for f in labels.frames], dtype=np.int64
            ),
            skeleton=list(labels.skeleton),
            task=labels.task,
        )
        write_project(dataset, project_path=out_project, videos=labels.videos)
        if out_project.exists():
            out_project.rmdir()
        staging.rename(out_project)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    dataset.root = out_project
    return dataset
