"""Per-group normalization scale: the median nose-eye distance of each individual.

The paper divides pixel errors by this distance so horses filmed at different sizes are
comparable. A group with no frame where both bodyparts are labeled falls back to the median
scale of the other groups (with a warning that names it).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from poseshift.data.hdf import read_hdf_safely
from poseshift.data.project import HDF_KEY, PoseDataset
from poseshift.errors import PoseshiftError

DEFAULT_PAIR = ("Nose", "Eye")


def resolve_pair(dataset: PoseDataset, pair: Sequence[str] | None) -> tuple[str, str]:
    """The bodypart pair to measure; Nose/Eye by default, as in Horse-10."""
    chosen = tuple(pair) if pair else DEFAULT_PAIR
    missing = [name for name in chosen if name not in dataset.bodyparts]
    if len(chosen) != 2 or missing:
        raise PoseshiftError(
            f"scale pair {list(chosen)} is not two bodyparts of the project "
            f"({dataset.bodyparts}); pass e.g. --scale-pair {dataset.bodyparts[0]},"
            f"{dataset.bodyparts[-1]}"
        )
    return chosen


def group_scales(dataset: PoseDataset, pair: Sequence[str] | None = None) -> dict[str, float]:
    """Median distance between the pair's bodyparts over each group's labeled frames."""
    a, b = (dataset.bodyparts.index(name) for name in resolve_pair(dataset, pair))
    distance = np.linalg.norm(dataset.keypoints[:, a] - dataset.keypoints[:, b], axis=-1)
    table = pd.DataFrame({"group": dataset.groups, "distance": distance})
    usable = table[table["distance"] > 0]  # NaN compares False: unlabeled rows drop out
    scales = usable.groupby("group", sort=False)["distance"].median().to_dict()
    if not scales:
        raise PoseshiftError(
            f"{dataset.root}: no frame has both {pair or DEFAULT_PAIR} labeled; "
            "choose another --scale-pair"
        )
    fallback = float(np.median(list(scales.values())))
    for group in dataset.group_names:
        if group not in scales:
            warnings.warn(
                f"group {group!r} has no frame with both scale bodyparts labeled; "
                f"using the median scale of the other groups ({fallback:.2f} px)",
                stacklevel=2,
            )
            scales[group] = fallback
    return {g: float(scales[g]) for g in dataset.group_names}


def read_official_scale(path: str | Path) -> pd.Series:
    """Horse-10's ``Horsescale.h5``: one scale per image path."""
    frame = read_hdf_safely(  # never pd.read_hdf: a crafted file would unpickle
        path, HDF_KEY, what="scale file", fix="use Horsescale.h5 from the Horse-10 benchmark"
    )
    if "scale" not in frame.columns:
        raise PoseshiftError(f"scale file {path} has no 'scale' column")
    scale = pd.to_numeric(frame["scale"], errors="coerce").astype(float)
    # One row per image: a repeated image would shift later images' scales (looked up by
    # position), and errors are divided by the scale, so it must be a positive number.
    duplicated = scale.index[scale.index.duplicated()]
    if len(duplicated):
        raise PoseshiftError(
            f"scale file {path}: image {duplicated[0]!r} has more than one row; keep one per image"
        )
    bad = ~(np.isfinite(scale.to_numpy()) & (scale.to_numpy() > 0))
    if bad.any():
        row = int(np.argmax(bad))
        raise PoseshiftError(
            f"scale file {path}: image {scale.index[row]!r} has scale "
            f"{frame['scale'].iloc[row]}; every scale must be a positive number (pixels)"
        )
    return scale


def image_scales(
    dataset: PoseDataset,
    pair: Sequence[str] | None = None,
    official: str | Path | None = None,
) -> np.ndarray:
    """Scale of every image: from an official file (joined by path) or per-group medians."""
    if official is None:
        scales = group_scales(dataset, pair)
        return np.array([scales[g] for g in dataset.groups], dtype=np.float64)
    table = read_official_scale(official)
    missing = [name for name in dataset.images if name not in table.index]
    if missing:
        raise PoseshiftError(
            f"scale file {official} has no row for {len(missing)} image(s), e.g. {missing[0]!r}"
        )
    return table.loc[dataset.images].to_numpy(dtype=np.float64)
