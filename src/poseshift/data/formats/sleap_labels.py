"""A sleap-io ``Labels`` object (from .slp, NWB, Label Studio, YOLO) as ``ImportedLabels``.

Bodyparts are the skeleton's nodes in their order, the skeleton its edges. A frame keeps its
user-labeled instance (predicted instances only with ``predictions=True``, where a frame has
no user instance); a frame with several is refused in one line unless ``individual`` names
the track to keep. Where the pixels come from and which group a frame joins:

* images referenced by path (``ImageVideo``): copied; group = the image's folder name;
* a video file (``MediaVideo``): frames decoded to ``img<frame>.png``; group = the video's
  name without its extension (``mouse.day1``), so a group-aware split holds out whole videos
  (sessions), as SLEAP users split;
* frames embedded in the file (``.pkg.slp``): decoded; named after their source (its image
  folder, or its video) when the file records one, else after the embedded video.

Two different sources of one name (``mouseA/cam0.mp4``, ``mouseB/cam0.mp4``) are told apart
by their folder (groups ``mouseA_cam0``, ``mouseB_cam0``); if that is not enough, refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from poseshift.data.formats.imported import ImportedFrame, ImportedLabels
from poseshift.errors import PoseshiftError


def from_sleap(
    labels: Any,
    source: Path,
    *,
    individual: str | None = None,
    predictions: bool = False,
    task: str | None = None,
) -> ImportedLabels:
    """``labels`` is a ``sleap_io.Labels``; every problem is one line naming ``source``."""
    if len(labels.skeletons) != 1:
        raise PoseshiftError(
            f"{source} has {len(labels.skeletons)} skeletons; poseshift imports one species "
            "(one skeleton) per project"
        )
    skeleton = labels.skeletons[0]
    bodyparts = [str(name) for name in skeleton.node_names]
    _relink_moved(labels, source.parent if source.is_file() else source)
    _check_videos(labels, source)
    tracks = sorted({i.track.name for i in labels.instances if i.track is not None})
    if individual is not None and individual not in tracks:
        raise PoseshiftError(
            f"{source} has no track (individual) named {individual!r}; its tracks: "
            f"{', '.join(tracks) or 'none'}"
        )
    frames: list[tuple[Path, ImportedFrame]] = []  # (pixels' origin, frame)
    for lf in labels.labeled_frames:
        chosen = _instances(lf, predictions, individual)
        if not chosen:
            continue
        if len(chosen) > 1:
            raise PoseshiftError(
                f"{source}: frame {lf.frame_idx} of {_video_name(lf.video)} has {len(chosen)} "
                "animals; poseshift projects hold one per frame: pass --individual NAME "
                f"(tracks: {', '.join(tracks) or 'none'})"
            )
        points = np.asarray(chosen[0].numpy(), dtype=np.float32)[:, :2]
        frames.append(_frame(lf, points, source))
    if not frames:
        kind = "user-labeled or predicted" if predictions else "user-labeled"
        hint = "" if predictions else " (pass --predictions to import predicted instances)"
        raise PoseshiftError(f"{source} has no {kind} instance{hint}")
    renamed = _distinct_groups(frames, source)
    return ImportedLabels(
        source=source,
        scorer=str(labels.provenance.get("scorer") or "sleap"),
        bodyparts=bodyparts,
        frames=[frame for _, frame in frames],
        skeleton=[(str(a), str(b)) for a, b in skeleton.edge_names],
        task=task or skeleton.name or source.stem.split(".")[0],
        videos=_media_videos(labels, renamed),
    )


def _instances(lf: Any, predictions: bool, individual: str | None) -> list:
    chosen = list(lf.user_instances)
    if not chosen and predictions:
        chosen = list(lf.predicted_instances)
    if individual is not None:
        chosen = [i for i in chosen if i.track is not None and i.track.name == individual]
    return chosen


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def _backend_kind(video: Any) -> str:
    filename = video.filename
    if isinstance(filename, list) or str(filename).lower().endswith(IMAGE_SUFFIXES):
        return "images"
    if str(filename).endswith((".slp", ".h5", ".hdf5")):
        return "embedded"
    return "media"


def _image_file(video: Any, index: int) -> Path:
    """The image file of frame ``index`` of an image-list video (or a one-image video)."""
    filename = video.filename
    return Path(filename[index] if isinstance(filename, list) else filename)


def _video_name(video: Any) -> str:
    filename = video.filename
    return str(filename[0] if isinstance(filename, list) and filename else filename)


def _relink_moved(labels: Any, folder: Path) -> None:
    """Videos and images that are gone from their recorded place but sit next to the labels
    file (a project copied to another machine) are used from there, as SLEAP offers to."""
    for video in labels.videos:
        kind = _backend_kind(video)
        if kind == "embedded":
            continue
        files = video.filename if isinstance(video.filename, list) else [video.filename]
        moved = [folder / Path(str(f).replace("\\", "/")).name for f in files]
        if not all(Path(f).is_file() for f in files) and all(m.is_file() for m in moved):
            relinked = [str(m) for m in moved]
            video.replace_filename(
                relinked if isinstance(video.filename, list) else relinked[0], open=False
            )


def _check_videos(labels: Any, source: Path) -> None:
    """Every referenced image or video must exist before a single frame is written."""
    for lf in labels.labeled_frames:
        video, kind = lf.video, _backend_kind(lf.video)
        if kind == "images":
            path = _image_file(video, lf.frame_idx)
            missing = not path.is_file()
        else:
            path, missing = Path(video.filename), not video.exists()
        if missing:
            raise PoseshiftError(
                f"{source} refers to {path}, which is missing; put it back (or re-save the "
                "labels with embedded frames) before importing"
            )


def _origin(video: Any) -> Any:
    """The original video or images an embedded video was made from, or None."""
    origin = video.source_video
    while origin is not None and origin.source_video is not None:
        origin = origin.source_video
    return origin


def _frame(lf: Any, points: np.ndarray, source: Path) -> tuple[Path, ImportedFrame]:
    """The frame, and the image folder or video file its group is named after."""
    video, index = lf.video, int(lf.frame_idx)
    kind = _backend_kind(video)
    if kind == "images":
        path = _image_file(video, index)
        return path.parent, ImportedFrame(path.parent.name, path.name, points, copy_from=path)
    named = video
    origin = _origin(video) if kind == "embedded" else None
    if origin is not None:
        named = origin
    if isinstance(named.filename, list):  # embedded copy of referenced images
        path = Path(named.filename[index])
        where, group, name = path.parent, path.parent.name, f"{path.stem}.png"
    else:
        where = Path(named.filename)
        group, name = _stem(where), f"img{index:05d}.png"

    def pixels(video: Any = video, index: int = index) -> np.ndarray:
        try:
            if not video.is_open:
                video.open()
            image = video[index]
        except (OSError, ValueError, KeyError, IndexError) as exc:
            raise PoseshiftError(
                f"{source}: frame {index} of {_video_name(video)} cannot be read ({exc})"
            ) from None
        return np.asarray(image)

    return where, ImportedFrame(group, name, points, pixels=pixels)


def _stem(video_file: Path) -> str:
    """``mouse.day1.mp4`` -> ``mouse.day1`` (only the extension goes); ``x.pkg.slp`` -> ``x``."""
    name = video_file.name
    return name.removesuffix(".pkg.slp") if name.endswith(".pkg.slp") else video_file.stem


def _distinct_groups(frames: list[tuple[Path, ImportedFrame]], source: Path) -> set[Path]:
    """Sources that share a name (``a/cam0.mp4``, ``b/cam0.mp4``) get their folder's name in
    front, so two sessions never merge into one group; returns the renamed sources."""
    resolved = [(where.resolve(), frame) for where, frame in frames]
    origins: dict[str, set[Path]] = {}
    for where, frame in resolved:
        origins.setdefault(frame.group, set()).add(where)
    renamed = {where for shared in origins.values() if len(shared) > 1 for where in shared}
    owner: dict[str, Path] = {}
    for where, frame in resolved:
        if where in renamed:
            frame.group = f"{where.parent.name}_{frame.group}"
        first = owner.setdefault(frame.group, where)
        if first != where:
            raise PoseshiftError(
                f"{source}: {first} and {where} would both become group {frame.group!r}; "
                "rename one of them (or its folder) and save the labels again"
            )
    return renamed


def _media_videos(labels: Any, renamed: set[Path]) -> list[tuple[str, tuple[int, int]]]:
    """Video files for config.yaml's video_sets, where DeepLabCut finds ``labeled-data/<stem>``:
    a renamed group's video is left out (its folder is listed by its own path instead)."""
    found = []
    for video in labels.videos:
        path = Path(video.filename).resolve() if isinstance(video.filename, str) else None
        if path is None or path in renamed or _backend_kind(video) != "media":
            continue
        if video.exists() and video.shape is not None:
            found.append((str(path), (video.shape[2], video.shape[1])))
    return found
