"""Keypoints and skeletons drawn on images: bodypart colours, contact sheets, evaluation
comparisons and labeled-video frames.

Colours follow DeepLabCut: one per bodypart, spread along the project's matplotlib
``colormap`` (``rainbow`` when it names none). matplotlib is imported only when colours are
chosen, so importing this module (as ``poseshift analyze`` does) stays light.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from poseshift.errors import PoseshiftError
from poseshift.fsutil import write_atomic

if TYPE_CHECKING:
    from poseshift.data.project import PoseDataset

DEFAULT_STYLE = {
    "pcutoff": 0.6,
    "dotsize": 8,
    "colormap": "rainbow",
    "skeleton": [],
    "skeleton_color": "black",
}
TILE_WIDTH = 320
COLUMNS = 4

# ----------------------------------------------------------------------------- colours


def project_style(project: str | Path) -> dict:
    """Drawing settings from the project's config.yaml (defaults where it is missing)."""
    from poseshift.data.project_config import read_config, read_skeleton

    style = dict(DEFAULT_STYLE)
    if not (Path(project) / "config.yaml").is_file():
        warnings.warn(
            f"no config.yaml in {project}: drawing without skeleton, pcutoff "
            f"{style['pcutoff']}; pass --pcutoff to change it",
            stacklevel=2,
        )
        return style
    config_path = Path(project) / "config.yaml"
    config = read_config(Path(project))  # checks pcutoff and dotsize
    style.update({k: config[k] for k in DEFAULT_STYLE if config.get(k) not in (None, "")})
    style["skeleton"] = read_skeleton(config, config["bodyparts"], config_path)
    return style


def _colormap_rgb(n: int, colormap: str) -> np.ndarray:
    """(n, 3) RGB floats in 0..1 evenly spaced along ``colormap`` (unknown names: rainbow)."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[colormap]
    except KeyError:
        cmap = matplotlib.colormaps[DEFAULT_STYLE["colormap"]]
    return np.asarray(cmap(np.linspace(0, 1, n)))[:, :3]


def bodypart_colours(n: int, colormap: str = "rainbow") -> np.ndarray:
    """(n, 3) RGB uint8 colours along ``colormap``, rounded (contact sheets)."""
    return (_colormap_rgb(n, colormap) * 255).round().astype(np.uint8)


def video_colours(n: int, colormap: str) -> list[tuple[int, int, int]]:
    """``n`` BGR colours along ``colormap``, truncated as DeepLabCut's labeled videos are."""
    return [tuple(int(255 * c) for c in rgb[::-1]) for rgb in _colormap_rgb(n, colormap)]


def colour_bgr(name: str) -> tuple[int, int, int]:
    """A matplotlib colour name as BGR (unknown names: the default skeleton colour)."""
    from matplotlib.colors import to_rgb

    try:
        r, g, b = to_rgb(name)
    except ValueError:
        r, g, b = to_rgb(DEFAULT_STYLE["skeleton_color"])
    return int(255 * b), int(255 * g), int(255 * r)


# ----------------------------------------------------------------------------- video frames


def draw_poses(
    frame: np.ndarray,
    poses: np.ndarray,
    *,
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


# ----------------------------------------------------------------------------- evaluation


def draw_comparison(image: np.ndarray, truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """A BGR copy of RGB ``image``: green circle = label, red cross = prediction, a line joins
    the two (a quick visual check of an evaluation)."""
    canvas = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    radius = max(2, round(min(image.shape[:2]) / 80))
    for (tx, ty), (px, py) in zip(truth.tolist(), predicted[:, :2].tolist(), strict=True):
        if not np.isnan(px):
            p = (round(px), round(py))
            cv2.drawMarker(canvas, p, (0, 0, 255), cv2.MARKER_CROSS, 3 * radius, 1, cv2.LINE_AA)
            if not np.isnan(tx):
                cv2.line(canvas, (round(tx), round(ty)), p, (0, 255, 255), 1, cv2.LINE_AA)
        if not np.isnan(tx):
            cv2.circle(canvas, (round(tx), round(ty)), radius, (0, 200, 0), 1, cv2.LINE_AA)
    return canvas


def save_comparison(
    path: Path, image: np.ndarray, truth: np.ndarray, predicted: np.ndarray
) -> None:
    """Write :func:`draw_comparison` to ``path`` (a .png) atomically."""
    canvas = draw_comparison(image, truth, predicted)
    # The temporary file keeps the .png suffix, which cv2 needs to pick the encoder.
    write_atomic(path, lambda tmp: cv2.imwrite(str(tmp), canvas))


# ----------------------------------------------------------------------------- contact sheets
# A grid of labeled frames with keypoints and skeleton, for any project: the quickest check
# that labels sit on the animal (after an import, a conversion or a synthetic generation).


def draw_labels(image: np.ndarray, dataset: PoseDataset, index: int, width: int) -> np.ndarray:
    """Frame ``index`` (``image``) resized to ``width`` with its skeleton and keypoints drawn."""
    scale = width / image.shape[1]
    size = (width, max(1, round(image.shape[0] * scale)))
    image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    points = dataset.keypoints[index] * scale
    radius = max(2, round(image.shape[1] / 110))
    part = {name: i for i, name in enumerate(dataset.bodyparts)}
    for a, b in dataset.skeleton:
        p, q = points[part[a]], points[part[b]]
        if np.isfinite(p).all() and np.isfinite(q).all():
            for colour, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):  # visible on any scene
                cv2.line(image, _fixed(p), _fixed(q), colour, width, cv2.LINE_AA, 4)
    colours = bodypart_colours(len(dataset.bodyparts), str(dataset.config.get("colormap", "")))
    for point, colour in zip(points, colours, strict=True):
        if np.isfinite(point).all():
            cv2.circle(image, _fixed(point), radius * 16, (0, 0, 0), -1, cv2.LINE_AA, 4)
            cv2.circle(image, _fixed(point), (radius - 1) * 16, colour.tolist(), -1, cv2.LINE_AA, 4)
    return image


def contact_sheet(
    dataset: PoseDataset,
    n: int = 8,
    seed: int = 0,
    columns: int = COLUMNS,
    tile_width: int = TILE_WIDTH,
) -> np.ndarray:
    """RGB uint8 grid of ``n`` random frames (seeded), each scaled to ``tile_width`` pixels.

    The sheet is ``min(n, columns)`` tiles wide; the tile height is the tallest scaled frame.
    """
    if n < 1 or columns < 1 or tile_width < 16:
        raise PoseshiftError("--n and columns must be at least 1 and the tile width at least 16")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(dataset), min(n, len(dataset)), replace=False))
    tiles = []
    for index in chosen:
        image = dataset.load_image(int(index))
        tile = draw_labels(image, dataset, int(index), tile_width)
        _caption(tile, dataset.images[index].removeprefix("labeled-data/"))
        tiles.append(tile)
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    tile_height = max(tile.shape[0] for tile in tiles)
    sheet = np.zeros((rows * tile_height, columns * tile_width, 3), np.uint8)
    for i, tile in enumerate(tiles):
        y, x = (i // columns) * tile_height, (i % columns) * tile_width
        sheet[y : y + tile.shape[0], x : x + tile_width] = tile
    return sheet


def write_contact_sheet(
    dataset: PoseDataset, out: str | Path, n: int = 8, seed: int = 0, **options
) -> Path:
    """Write :func:`contact_sheet` as a PNG (atomically); ``options`` go to ``contact_sheet``."""
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise PoseshiftError(f"--out {out} must end in .png")
    sheet = contact_sheet(dataset, n, seed, **options)
    return write_atomic(out, lambda tmp: _imwrite(tmp, sheet))


def _fixed(point: np.ndarray) -> list[int]:
    return np.round(point * 16).astype(np.int32).tolist()


def _caption(tile: np.ndarray, text: str) -> None:
    for colour, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(tile, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, width, cv2.LINE_AA)


def _imwrite(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image[..., ::-1]):
        raise PoseshiftError(f"could not write {path}: check the folder is writable")
