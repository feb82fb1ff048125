"""Unlabeled target frames for test-time adaptation: a video, an image folder or a project.

``TargetFrames.open(path)`` accepts

* a video file: up to ``max_frames`` frames spread evenly over it;
* a folder of images (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.tif``, ``.tiff``);
* a DeepLabCut project (a folder with ``config.yaml``): every image under ``labeled-data/``,
  labels ignored (folders DeepLabCut writes with labels drawn, ``*_labeled``, left out).

``identity()`` names what was read: resolved paths, sizes, sha256 of the contents, and the
frame indices used, so a result computed from these frames is reused only when provably the
same frames are given again. Everything is checked in ``open`` (a bad file fails before work).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from poseshift.data.images import read_image
from poseshift.errors import PoseshiftError
from poseshift.predict.frames import probe_video

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class TargetFrames:
    """Where the frames come from: a video (with frame indices) or a list of images."""

    source: Path
    kind: str  # "video" | "images" | "project"
    files: tuple[Path, ...]  # the video, or every image in order
    frame_indices: tuple[int, ...]  # video frames used; () for images

    @classmethod
    def open(cls, path: str | Path, *, max_frames: int = 500) -> TargetFrames:
        """Check ``path`` and list its frames (at most ``max_frames``, spread evenly)."""
        path = Path(path)
        if max_frames < 1:
            raise PoseshiftError(f"--max-frames {max_frames}: give at least 1 frame")
        if path.is_file():
            info = probe_video(path)
            count = info.frame_count or 1
            indices = np.unique(np.linspace(0, count - 1, min(max_frames, count)).round())
            return cls(path, "video", (path,), tuple(int(i) for i in indices))
        if not path.is_dir():
            raise PoseshiftError(
                f"{path} does not exist; give a video, a folder of images or a project folder"
            )
        is_project = (path / "config.yaml").is_file()
        root = path / "labeled-data" if is_project else path
        images = sorted(
            p
            for p in root.rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES
            and not any(part.endswith("_labeled") for part in p.relative_to(root).parts[:-1])
        )
        if not images:
            where = f"{root} (the project's labeled-data)" if is_project else str(path)
            raise PoseshiftError(
                f"{where} holds no images ({', '.join(IMAGE_SUFFIXES)}); give a video, a "
                "folder of frames or a project with extracted frames"
            )
        if len(images) > max_frames:
            keep = np.unique(np.linspace(0, len(images) - 1, max_frames).round()).astype(int)
            images = [images[i] for i in keep]
        for image in images:  # decode all now: a broken file fails before any work
            read_image(image)
        return cls(path, "project" if is_project else "images", tuple(images), ())

    def __len__(self) -> int:
        return len(self.frame_indices) if self.kind == "video" else len(self.files)

    def identity(self) -> dict:
        """Paths, sizes and content hashes of the files read, and the video frames used."""
        files = [
            {"path": str(f.resolve()), "size": f.stat().st_size, "sha256": sha256_file(f)}
            for f in self.files
        ]
        record: dict = {
            "source": str(self.source.resolve()),
            "kind": self.kind,
            "frames": len(self),
        }
        if self.kind == "video":
            record["video"] = files[0]
            record["frame_indices"] = list(self.frame_indices)
        else:
            record["images"] = files
        return record

    def __iter__(self) -> Iterator[np.ndarray]:
        """RGB uint8 frames, in order (a video frame that fails to decode is skipped)."""
        if self.kind != "video":
            for image in self.files:
                yield read_image(image)
            return
        capture = cv2.VideoCapture(str(self.files[0]))
        wanted, index = set(self.frame_indices), 0
        try:
            while index <= self.frame_indices[-1]:
                ok = capture.grab()
                if not ok:
                    break
                if index in wanted:
                    ok, frame = capture.retrieve()
                    if ok:
                        yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                index += 1
        finally:
            capture.release()
