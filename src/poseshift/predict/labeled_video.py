"""Labeled videos: keypoints (one colour per bodypart) and the skeleton drawn on each frame.

Reads the .h5 that ``analyze_videos`` wrote (running it first when missing), or any
single-animal file in DeepLabCut's layout (``poses``: e.g. DeepLabCut 3's ``analyze_videos``
output), and writes the video frame by frame; :mod:`poseshift.draw` styles the drawing from
the project's config.yaml the way DeepLabCut does: ``skeleton``, ``skeleton_color``,
``pcutoff``, ``dotsize`` and ``colormap``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from poseshift.data.hdf import read_hdf_safely
from poseshift.draw import colour_bgr, draw_poses, project_style, video_colours
from poseshift.errors import PoseshiftError
from poseshift.fsutil import atomic_path
from poseshift.predict.frames import probe_video
from poseshift.predict.video import analyze_videos
from poseshift.run import RunDir


def label_video(
    run_dir: str | Path,
    video: str | Path,
    *,
    poses: str | Path | None = None,
    pcutoff: float | None = None,
    dest: str | Path | None = None,
    snapshot: str | int = "last",
    batch_size: int = 8,
    device: str = "auto",
    precision: str = "auto",
    show_progress: bool = True,
    compile: bool | None = None,
    scorer: str | None = None,
) -> Path:
    """Write ``<video stem><scorer>_labeled.mp4`` next to the poses; return its path.

    Keypoints below ``pcutoff`` (default: the project's ``pcutoff``) are not drawn. With
    ``poses`` (a DeepLabCut-layout .h5) nothing is analyzed and ``run_dir`` may be the
    DeepLabCut project itself (it gives the drawing style); the video goes next to ``poses``
    unless ``dest`` is given.
    """
    run_dir = Path(run_dir)
    info = probe_video(video)
    # The style (config.yaml checked) and --pcutoff before any analysis starts.
    project = run_dir if (run_dir / "config.yaml").is_file() else RunDir(run_dir).spec().project
    style = project_style(project)
    cutoff = style["pcutoff"] if pcutoff is None else pcutoff
    if not 0 <= cutoff <= 1:
        raise PoseshiftError(f"--pcutoff {cutoff}: give a likelihood from 0 to 1")
    if poses is None:
        [h5] = analyze_videos(
            run_dir,
            [info.path],
            batch_size=batch_size,
            device=device,
            dest=dest,
            snapshot=snapshot,
            precision=precision,
            show_progress=show_progress,
            compile=compile,
            scorer=scorer,
        )
        out = h5.with_name(f"{h5.stem}_labeled.mp4")
    else:
        h5 = Path(poses)
        out = Path(dest or h5.parent) / f"{h5.stem}_labeled.mp4"
    bodyparts, table = read_poses(h5)
    edges = [
        (bodyparts.index(a), bodyparts.index(b))
        for a, b in style["skeleton"]
        if a in bodyparts and b in bodyparts
    ]
    colors = video_colours(len(bodyparts), str(style["colormap"]))
    edge_color = colour_bgr(str(style["skeleton_color"]))
    fps = info.fps if info.fps > 0 else 30.0
    with atomic_path(out) as tmp:
        writer = cv2.VideoWriter(
            str(tmp),
            cv2.VideoWriter_fourcc(*"mp4v"),  # type: ignore[attr-defined]  # not in cv2 stubs  # type: ignore[attr-defined]  # not in cv2 stubs
            fps,
            (info.width, info.height),
        )
        if not writer.isOpened():
            raise PoseshiftError(f"OpenCV cannot write {out} (mp4v); check the folder is writable")
        capture = cv2.VideoCapture(str(info.path))
        try:
            for row in range(len(table)):
                ok, frame = capture.read()
                if not ok:
                    break
                writer.write(
                    draw_poses(
                        frame,
                        table[row],
                        colors=colors,
                        edges=edges,
                        pcutoff=cutoff,
                        dotsize=int(style["dotsize"]),
                        edge_color=edge_color,
                    )
                )
        finally:
            capture.release()
            writer.release()
    return out


def read_poses(h5: Path) -> tuple[list[str], np.ndarray]:
    """Bodyparts and (N, K, 3) x, y, likelihood of a single-animal DeepLabCut poses file."""
    table = read_hdf_safely(h5, what="poses file", fix="give a file of analyze_videos")
    columns = table.columns
    if columns.nlevels != 3 or list(columns.names) != ["scorer", "bodyparts", "coords"]:
        raise PoseshiftError(
            f"{h5}: columns are {list(columns.names)}, not scorer/bodyparts/coords; give a "
            "single-animal poses file (multi-animal files with 'individuals' are not supported)"
        )
    bodyparts = list(columns.get_level_values("bodyparts").unique())
    coords = list(columns.get_level_values("coords"))
    if coords != ["x", "y", "likelihood"] * len(bodyparts):
        raise PoseshiftError(
            f"{h5}: each bodypart needs the columns x, y, likelihood in that order (found "
            f"{coords[:6]}...); give a file written by analyze_videos"
        )
    values = table.to_numpy(dtype=np.float64).reshape(len(table), len(bodyparts), 3)
    return bodyparts, values
