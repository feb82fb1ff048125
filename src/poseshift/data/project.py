"""DeepLabCut projects: read and write ``config.yaml`` + ``labeled-data/*/CollectedData_*``.

A project becomes a :class:`PoseDataset`: image paths (relative to the project folder, as in
DeepLabCut's index), keypoints ``(N, K, 2)`` float32 with NaN for unlabeled, and the group
(video folder) of each image. Everything else in poseshift works on that table.

The files themselves are read and checked in ``labels`` (CollectedData), ``project_config``
(config.yaml) and ``images`` (frames); this module joins them and checks the whole.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from poseshift.data.images import image_size, read_image
from poseshift.data.labels import (
    COLUMN_LEVELS,
    HDF_KEY,
    find_label_files,
    labels_frame,
    labels_to_array,
    read_labels,
    write_labels,
)
from poseshift.data.project_config import read_config, read_skeleton, write_config
from poseshift.errors import PoseshiftError

# Other modules import these from here: the project's one public face.
__all__ = [
    "COLUMN_LEVELS",
    "HDF_KEY",
    "PoseDataset",
    "group_of",
    "image_size",
    "labels_frame",
    "labels_to_array",
    "load_project",
    "read_config",
    "read_group_map",
    "read_image",
    "read_labels",
    "write_config",
    "write_labels",
    "write_project",
]


@dataclass
class PoseDataset:
    """Labeled frames of one single-animal project."""

    root: Path
    scorer: str
    bodyparts: list[str]
    images: list[str]  # "labeled-data/<video>/<file>", relative to root
    keypoints: np.ndarray  # (N, K, 2) float32, NaN = unlabeled
    groups: list[str]  # group (individual / video) of each image
    image_sizes: np.ndarray  # (N, 2) int: width, height
    skeleton: list[tuple[str, str]] = field(default_factory=list)
    task: str = "poseshift"
    config: dict = field(default_factory=dict, repr=False)  # the project's config.yaml
    index_style: str = "tuple"  # the label files' row index: "tuple" (3 levels) or "path"

    def __len__(self) -> int:
        return len(self.images)

    @property
    def group_names(self) -> list[str]:
        """Groups in order of first appearance."""
        return list(dict.fromkeys(self.groups))

    def image_path(self, index: int) -> Path:
        return self.root / self.images[index]

    def load_image(self, index: int) -> np.ndarray:
        """RGB uint8 image (H, W, 3); a missing or corrupt file is a one-line error."""
        return read_image(self.image_path(index))

    def summary(self) -> dict:
        """What ``poseshift data info`` prints: groups, labeled fractions, image sizes."""
        labeled = ~np.isnan(self.keypoints[..., 0])
        groups = pd.Series(self.groups)
        sizes = pd.Series([f"{w}x{h}" for w, h in self.image_sizes])
        return {
            "project": str(self.root),
            "scorer": self.scorer,
            "task": self.task,
            "n_frames": len(self),
            "bodyparts": self.bodyparts,
            "frames_per_group": groups.value_counts(sort=False).to_dict(),
            "labeled_fraction": dict(
                zip(self.bodyparts, labeled.mean(axis=0).tolist(), strict=True)
            ),
            "image_sizes": sizes.value_counts().to_dict(),
        }

    def indices_of(self, images: Sequence[str]) -> np.ndarray:
        """Row numbers of the given image paths; unknown paths are an error naming one."""
        position = {name: i for i, name in enumerate(self.images)}
        missing = [name for name in images if name not in position]
        if missing:
            raise PoseshiftError(
                f"{len(missing)} image(s) are not in project {self.root}, e.g. {missing[0]!r}: "
                "the split or file refers to another project"
            )
        return np.array([position[name] for name in images], dtype=np.int64)


# ----------------------------------------------------------------------------- project


def load_project(project: str | Path, group_map: dict[str, str] | None = None) -> PoseDataset:
    """Read a single-animal DeepLabCut project; every file is checked before any work.

    Refused in one line: a bad config.yaml or label file, an image listed twice or missing on
    disk, and a project without a single labeled keypoint (nothing to train or evaluate).
    ``group_map`` maps a video folder name (or an image path) to a group; by default the
    group of an image is its video folder, which for Horse-30 is one horse.
    """
    root = Path(project)
    config = read_config(root)
    bodyparts = [str(b) for b in config["bodyparts"]]
    images: list[str] = []
    arrays = []
    source: dict[str, Path] = {}  # image -> the label file that lists it
    styles = set()
    for path in find_label_files(root, str(config["scorer"])):
        frame = read_labels(path)
        styles.add(frame.attrs["index_style"])
        arrays.append(labels_to_array(frame, bodyparts, path))
        for name in frame.index:
            if name in source:
                raise PoseshiftError(
                    f"image {name!r} is labeled in both {source[name]} and {path}; "
                    "keep its row in one CollectedData file"
                )
            if not (root / name).is_file():
                raise PoseshiftError(
                    f"{path}: row {name!r} names an image missing on disk ({root / name}): "
                    "restore the image or remove its row"
                )
            source[name] = path
        images.extend(frame.index)
    keypoints = np.concatenate(arrays)
    sizes = np.array([image_size(root / name) for name in images], dtype=np.int64)
    _unlabel_outside(keypoints, sizes, images, bodyparts, root)
    if np.isnan(keypoints).all():
        raise PoseshiftError(
            f"{root}: none of the {len(images)} frames has a labeled keypoint (inside its "
            "image); label frames in DeepLabCut first: there is nothing to train or evaluate"
        )
    _warn_unlabeled_frames(keypoints, images, root)
    _check_group_map(group_map, images, root)
    groups = [group_of(name, group_map) for name in images]
    return PoseDataset(
        root=root,
        scorer=str(config["scorer"]),
        bodyparts=bodyparts,
        images=list(images),
        keypoints=keypoints,
        groups=groups,
        image_sizes=sizes,
        skeleton=read_skeleton(config, bodyparts, root / "config.yaml"),
        task=str(config.get("Task") or root.name),
        config=config,
        index_style="path" if styles == {"path"} else "tuple",
    )


def group_of(image: str, group_map: dict[str, str] | None = None) -> str:
    parts = image.split("/")
    video = parts[1] if len(parts) > 2 else parts[0]
    if group_map is None:
        return video
    return group_map.get(image, group_map.get(video, video))


def _check_group_map(group_map: dict[str, str] | None, images: list[str], root: Path) -> None:
    """A key that names nothing (a typo, a stray space) would silently leave its video alone."""
    if not group_map:
        return
    known = set(images) | {group_of(name) for name in images}
    unknown = [key for key in group_map if key not in known]
    if unknown:
        raise PoseshiftError(
            f"group map: {len(unknown)} key(s) name no video folder or image of {root}, e.g. "
            f"{unknown[0]!r} (spaces count); fix them or remove their rows"
        )


def read_group_map(path: str | Path) -> dict[str, str]:
    """A CSV with columns ``video,group`` or ``image,group`` (e.g. several videos per animal)."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise PoseshiftError(f"group map {path} cannot be read: {exc}") from None
    key = next((c for c in ("video", "image") if c in table.columns), None)
    if key is None or "group" not in table.columns:
        raise PoseshiftError(
            f"group map {path}: needs a 'group' column and a 'video' or 'image' column, "
            f"found {list(table.columns)}"
        )
    empty = table[table[[key, "group"]].isna().any(axis=1)]
    if len(empty):
        raise PoseshiftError(f"group map {path}: row {empty.index[0] + 2} has an empty cell")
    repeated = table[table[key].duplicated()]
    if len(repeated):
        name = repeated[key].iloc[0]
        first = int(table.index[table[key] == name][0]) + 2
        raise PoseshiftError(
            f"group map {path}: {key} {name!r} is listed in rows {first} and "
            f"{repeated.index[0] + 2}; give each {key} one group"
        )
    return dict(zip(table[key], table["group"], strict=True))


def _unlabel_outside(
    keypoints: np.ndarray, sizes: np.ndarray, images: list[str], bodyparts: list[str], root: Path
) -> None:
    """Labels outside the image are typos or off-screen marks: warn and treat as unlabeled.

    Pixel i spans [i - 0.5, i + 0.5] (DeepLabCut's convention: centres at whole numbers), so
    a mark on the last pixel row or column, at up to width - 0.5, is inside.
    """
    x, y = keypoints[..., 0], keypoints[..., 1]
    width, height = sizes[:, :1], sizes[:, 1:]
    with np.errstate(invalid="ignore"):
        outside = (x < -0.5) | (y < -0.5) | (x > width - 0.5) | (y > height - 0.5)
    if outside.any():
        row, part = np.argwhere(outside)[0]
        warnings.warn(
            f"{root}: {int(outside.sum())} label(s) lie outside their image, e.g. "
            f"{bodyparts[part]} in {images[row]} at ({x[row, part]:.1f}, {y[row, part]:.1f}); "
            "they are treated as unlabeled; fix them in DeepLabCut to use them",
            stacklevel=3,
        )
        keypoints[outside] = np.nan


def _warn_unlabeled_frames(keypoints: np.ndarray, images: list[str], root: Path) -> None:
    empty = np.isnan(keypoints).all(axis=(1, 2))
    if empty.any():
        warnings.warn(
            f"{root}: {int(empty.sum())} frame(s) have no labels, e.g. "
            f"{images[int(np.argmax(empty))]}; they are kept as frames without the animal "
            "(negatives in training, ignored by metrics)",
            stacklevel=3,
        )


# ----------------------------------------------------------------------------- writing


def write_project(
    dataset: PoseDataset,
    index_style: str = "tuple",
    project_path: Path | None = None,
    videos: Sequence[tuple[str, tuple[int, int]]] = (),
) -> None:
    """Write config.yaml and one CollectedData pair per video folder of ``dataset.root``.

    Images must already be in place under ``dataset.root``; groups come from the folders.
    ``project_path`` is the folder's final location when it is staged elsewhere first;
    ``videos`` the (path, (width, height)) of real video files for config.yaml's video_sets.
    A folder without its video is listed by its own path: DeepLabCut's ``check_labels`` and
    ``create_training_dataset`` find ``labeled-data/<name>`` through the video_sets names.
    """
    folders = list(dict.fromkeys(name.split("/")[1] for name in dataset.images))
    final = {"project_path": str(Path(project_path).resolve())} if project_path else None
    write_config(
        dataset.root,
        dataset.scorer,
        dataset.bodyparts,
        videos=[*videos, *_folder_entries(dataset, folders, videos, project_path)],
        skeleton=dataset.skeleton,
        task=dataset.task,
        extra=final,
    )
    for video in folders:
        rows = [i for i, name in enumerate(dataset.images) if name.split("/")[1] == video]
        frame = labels_frame(
            dataset.scorer,
            dataset.bodyparts,
            [dataset.images[i] for i in rows],
            dataset.keypoints[rows],
            index_style,
        )
        write_labels(dataset.root / "labeled-data" / video, frame)


def _folder_entries(
    dataset: PoseDataset,
    folders: Sequence[str],
    videos: Sequence[tuple[str, tuple[int, int]]],
    project_path: Path | None,
) -> list[tuple[str, tuple[int, int]]]:
    """video_sets entries ``<project>/labeled-data/<folder>`` for folders with no real video."""
    have = {Path(path).stem for path, _ in videos}
    root = Path(project_path or dataset.root).resolve()
    entries = []
    for folder in folders:
        if folder not in have:
            first = next(i for i, n in enumerate(dataset.images) if n.split("/")[1] == folder)
            width, height = (int(v) for v in dataset.image_sizes[first])
            entries.append((str(root / "labeled-data" / folder), (width, height)))
    return entries
