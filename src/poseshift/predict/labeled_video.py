"""Labeled videos: keypoints (one colour per bodypart) and the skeleton drawn on each frame.

Reads the .h5 that ``analyze_videos`` wrote (running it first when missing) and styles the
drawing from the project's config.yaml the way DeepLabCut does: ``skeleton``,
``skeleton_color``, ``pcutoff``, ``dotsize`` and ``colormap``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np

from poseshift.data.hdf import read_hdf_safely
from poseshift.errors import PoseshiftError
from poseshift.fsutil import atomic_path
from poseshift.predict.frames import probe_video
from poseshift.predict.video import analyze_videos
from poseshift.run import RunDir

DEFAULT_STYLE = {
    "pcutoff": 0.6,
    "dotsize": 8,
    "colormap": "rainbow",
    "skeleton": [],
    "skeleton_color": "black",
}


def project_style(project: str | Path) -> dict:
    """Drawing settings from the project's config.yaml (defaults where it is missing)."""
    from poseshift.data.project import read_config

    style = dict(DEFAULT_STYLE)
    if not (Path(project) / "config.yaml").is_file():
        warnings.warn(
            f"no config.yaml in {project}: drawing without skeleton, pcutoff "
            f"{style['pcutoff']}; pass --pcutoff to change it",
            stacklevel=2,
        )
        return style
    config = read_config(Path(project))
    style.update({k: config[k] for k in DEFAULT_STYLE if config.get(k) not in (None, "")})
    return style


def bodypart_colors(n: int, colormap: str) -> list[tuple[int, int, int]]:
    """``n`` BGR colours evenly spaced along a matplotlib colormap (DeepLabCut's choice)."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[colormap]
    except KeyError:
        cmap = matplotlib.colormaps[DEFAULT_STYLE["colormap"]]
    rgba = cmap(np.linspace(0, 1, n)) if n > 1 else cmap([0.0])
    return [tuple(int(255 * c) for c in color[2::-1]) for color in rgba]


def _bgr(color: str) -> tuple[int, int, int]:
    from matplotlib.colors import to_rgb

    try:
        r, g, b = to_rgb(color)
    except ValueError:
        r, g, b = to_rgb(DEFAULT_STYLE["skeleton_color"])
    return int(255 * b), int(255 * g), int(255 * r)


def draw_poses(
    frame: np.ndarray,
    poses: np.ndarray,
    colors: list[tuple[int, int, int]],
    edges: list[tuple[int, int]],
    pcutoff: float,
    dotsize: int,
    edge_color: tuple[int, int, int],
) -> np.ndarray:
    """Draw one frame's (K, 3) poses in place: skeleton lines first, then dots on top."""
    visible = np.isfinite(poses[:, :2]).all(axis=1) & (poses[:, 2] >= pcutoff)
    points = np.round(np.nan_to_num(poses[:, :2])).astype(int)
    for a, b in edges:
        if visible[a] and visible[b]:
            cv2.line(frame, tuple(points[a]), tuple(points[b]), edge_color, 2, cv2.LINE_AA)
    for k in np.flatnonzero(visible):
        cv2.circle(frame, tuple(points[k]), max(1, dotsize // 2), colors[k], -1, cv2.LINE_AA)
    return frame


def label_video(
    run_dir: str | Path,
    video: str | Path,
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
    colors = bodypart_colors(len(bodyparts), str(style["colormap"]))
    edge_color = _bgr(str(style["skeleton_color"]))
    out = h5.with_name(f"{h5.stem}_labeled.mp4")
    fps = info.fps if info.fps > 0 else 30.0
    with atomic_path(out) as tmp:
        writer = cv2.VideoWriter(
            str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (info.width, info.height)
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
                        colors,
                        edges,
                        cutoff,
                        int(style["dotsize"]),
                        edge_color,
                    )
                )
        finally:
            capture.release()
            writer.release()
    return out
