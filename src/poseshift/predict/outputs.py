"""DeepLabCut-compatible prediction files: columns scorer/bodyparts/coords (x, y, likelihood)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from poseshift.data.project import COLUMN_LEVELS, HDF_KEY
from poseshift.fsutil import write_atomic


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
