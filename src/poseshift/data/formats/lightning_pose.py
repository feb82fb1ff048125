"""Lightning Pose data folders: ``CollectedData.csv`` (DeepLabCut's 3-row header) + images.

The CSV is read by ``data.labels`` (the DeepLabCut label reader, with all its checks), so
the bodyparts keep the file's column order. Image paths in the CSV are relative to the
folder that holds it. Groups: an image in ``labeled-data/<session>/`` belongs to group
``<session>``; images directly in ``labeled-data/`` (as in Lightning Pose's own example) form
one group named after the data folder. Lightning Pose splits frames at random, so one group
(``--scheme random``) is what its split means; sessions become separate groups.
"""

from __future__ import annotations

from pathlib import Path

import cv2

from poseshift.data.formats.imported import ImportedFrame, ImportedLabels
from poseshift.data.labels import labels_to_array, read_labels
from poseshift.errors import PoseshiftError


def find_csv(source: Path) -> Path:
    """The label CSV of a Lightning Pose folder (or ``source`` itself when it is the CSV)."""
    if source.is_file():
        return source
    if (source / "CollectedData.csv").is_file():
        return source / "CollectedData.csv"
    found = sorted(source.glob("CollectedData*.csv"))
    if len(found) != 1:
        raise PoseshiftError(
            f"{source}: expected one CollectedData*.csv (Lightning Pose's label file), found "
            f"{len(found)}; pass the CSV to import"
        )
    return found[0]


def read_lightning_pose(source: Path) -> ImportedLabels:
    csv_path = find_csv(source)
    frame = read_labels(csv_path)
    bodyparts = [str(name) for name in dict.fromkeys(frame.columns.get_level_values("bodyparts"))]
    keypoints = labels_to_array(frame, bodyparts, csv_path)
    root = csv_path.parent
    frames = []
    for name, points in zip(frame.index, keypoints, strict=True):
        parts = str(name).split("/")
        group = parts[-2] if len(parts) > 2 else root.name
        frames.append(
            ImportedFrame(group=group, name=parts[-1], keypoints=points, copy_from=root / name)
        )
    return ImportedLabels(
        source=csv_path,
        scorer=str(frame.columns.get_level_values(0)[0]),
        bodyparts=bodyparts,
        frames=frames,
        task=root.name,
        videos=_videos(root),
    )


def _videos(root: Path) -> list[tuple[str, tuple[int, int]]]:
    """The folder's ``videos/*.mp4`` (Lightning Pose keeps them there) for config.yaml."""
    found = []
    for video in sorted((root / "videos").glob("*.mp4")):
        capture = cv2.VideoCapture(str(video))
        size = (
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        capture.release()
        if size[0] > 0:
            found.append((str(video.resolve()), size))
    return found
