"""DeepLabCut-compatible prediction files: columns scorer/bodyparts/coords (x, y, likelihood)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from poseshift.data.project import COLUMN_LEVELS, HDF_KEY
from poseshift.errors import PoseshiftError
from poseshift.fsutil import write_atomic, write_json_atomic


def poses_frame(
    scorer: str, bodyparts: Sequence[str], poses: np.ndarray, index: Sequence | None = None
) -> pd.DataFrame:
    """(N, K, 3) poses as the DataFrame DeepLabCut's analyze_videos writes."""
    columns = pd.MultiIndex.from_product(
        [[scorer], list(bodyparts), ["x", "y", "likelihood"]], names=COLUMN_LEVELS
    )
    values = np.asarray(poses, dtype=np.float64).reshape(len(poses), -1)
    return pd.DataFrame(values, columns=columns, index=index)


def write_poses(path: str | Path, frame: pd.DataFrame, csv: bool = True) -> Path:
    """Write poses as DeepLabCut reads them: ``path`` (.h5) and, with ``csv``, the .csv.

    The .h5 uses pandas' fixed format: a table-format file written by pandas 3 cannot be
    read by pandas 2 (which DeepLabCut 3.0 installs), a fixed-format one reads in both, and
    DeepLabCut's readers call ``pd.read_hdf(path)``, which takes either.
    """
    path = Path(path)
    if csv:
        write_atomic(path.with_suffix(".csv"), lambda tmp: frame.to_csv(tmp))
    return write_atomic(path, lambda tmp: frame.to_hdf(tmp, key=HDF_KEY, mode="w"))


def source_path(h5: str | Path) -> Path:
    """``<video><scorer>.json``: what the poses in ``<video><scorer>.h5`` were computed from."""
    return Path(h5).with_suffix(".json")


def read_source(h5: str | Path) -> dict | None:
    """The recorded source of an output, or None (none recorded, or unreadable)."""
    try:
        source = json.loads(source_path(h5).read_text())
    except (OSError, ValueError):
        return None
    return source if isinstance(source, dict) else None


def is_reusable(h5: str | Path, source: dict) -> bool:
    """``h5`` exists and was computed from exactly ``source`` (video, snapshot, options)."""
    # Through JSON, so that tuples compare equal to the lists the file holds.
    return Path(h5).is_file() and read_source(h5) == json.loads(json.dumps(source))


def forget_source(h5: str | Path) -> None:
    """Drop the record before rewriting outputs: a crash midway must not leave it matching."""
    source_path(h5).unlink(missing_ok=True)


def record_source(h5: str | Path, source: dict) -> Path:
    """Written after the .h5: a matching record means complete outputs of that source."""
    return write_json_atomic(source_path(h5), source)


def check_outputs(videos: Sequence[Path], outputs: Sequence[Path], overwrite: bool) -> None:
    """Refuse two videos writing one output (same stem, one --dest), and replacing another
    video's poses without ``overwrite``: DeepLabCut's names leave no room for folders."""
    first: dict[Path, Path] = {}
    for video, out in zip(videos, outputs, strict=True):
        video = video.resolve()
        other = first.setdefault(out, video)
        if other != video:
            raise PoseshiftError(
                f"{other} and {video} would both write {out}; analyze videos of the same "
                "name into different --dest folders"
            )
        stored = (read_source(out) or {}).get("video", {}).get("path")
        if out.is_file() and stored and stored != str(video) and not overwrite:
            raise PoseshiftError(
                f"{out} holds the poses of {stored}, not of {video}; use another --dest, "
                "or --overwrite to replace them"
            )
