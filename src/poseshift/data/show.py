"""Contact sheets: a grid of labeled frames with keypoints and skeleton, for any project.

The quickest check that labels sit on the animal (after an import, a conversion or a
synthetic generation): every tile is one frame scaled to a common width, with each bodypart
in its own colour from the project's ``colormap`` and the ``skeleton`` pairs of config.yaml.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from poseshift.data.project import PoseDataset
from poseshift.errors import PoseshiftError
from poseshift.fsutil import write_atomic

TILE_WIDTH = 320
COLUMNS = 4


def bodypart_colours(n: int, colormap: str = "rainbow") -> np.ndarray:
    """(n, 3) RGB uint8 colours spread along a matplotlib colormap (DeepLabCut's convention)."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[colormap]
    except KeyError:
        cmap = matplotlib.colormaps["rainbow"]
    return (np.asarray(cmap(np.linspace(0, 1, n)))[:, :3] * 255).round().astype(np.uint8)


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
