"""Labeled videos: keypoints (one colour per bodypart) and the skeleton drawn on each frame.

Reads the .h5 that ``analyze_videos`` wrote (running it first when missing) and writes the
video frame by frame; :mod:`poseshift.draw` styles the drawing from the project's config.yaml
the way DeepLabCut does: ``skeleton``, ``skeleton_color``, ``pcutoff``, ``dotsize`` and
``colormap``.
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
    pcutoff: float | None = None,
    dest: str | Path | None = None,
    snapshot: str | int = "last",
    batch_size: int = 8,
    device: str = "auto",
    precision: str = "auto",
    show_progress: bool = True,
    compile: bool | None = None,
) -> Path:
    """Write ``<video stem><scorer>_labeled.mp4`` next to the poses; return its path.

    Keypoints below ``pcutoff`` (default: the project's ``pcutoff``) are not drawn.
    """
    run_dir = Path(run_dir)
    info = probe_video(video)
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
    )
    style = project_style(RunDir(run_dir).spec().project)
    cutoff = style["pcutoff"] if pcutoff is None else pcutoff
    table = read_hdf_safely(h5, what="prediction file", fix="run analyze again")  # no pickles
    bodyparts = list(table.columns.get_level_values("bodyparts").unique())
    poses = table.to_numpy(dtype=np.float64).reshape(len(table), len(bodyparts), 3)
    edges = [
        (bodyparts.index(a), bodyparts.index(b))
        for a, b in style["skeleton"]
        if a in bodyparts and b in bodyparts
    ]
    colors = video_colours(len(bodyparts), str(style["colormap"]))
    edge_color = colour_bgr(str(style["skeleton_color"]))
    out = h5.with_name(f"{h5.stem}_labeled.mp4")
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
            for row in range(len(poses)):
                ok, frame = capture.read()
                if not ok:
                    break
                writer.write(
                    draw_poses(
                        frame,
                        poses[row],
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
