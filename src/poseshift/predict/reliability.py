"""A per-frame reliability score for poses on new data, next to the analysis output.

Three signals per frame, each a proxy for the (unknown) error of its poses:

* ``likelihood_mean`` / ``likelihood_min``: the network's own confidence (DeepLabCut's
  ``uncertain`` rule uses it alone);
* ``rescale_px``: how far the keypoints move when the frame is analyzed again at
  ``RESCALE`` (0.8) times the analyzed input size (``--resize`` or the training scale), at
  the analysis' precision, median over keypoints, in video pixels. A
  network that has really found a keypoint finds it again at another scale; one that
  guesses does not (test-time augmentation agreement; no symmetry table needed, unlike a
  flip);
* ``jump_px``: how far each keypoint is from the midpoint of its positions in the previous
  and next frames (one-sided at the ends), median over keypoints: DeepLabCut's ``jump``
  signal, robust to steady motion.

``unreliability`` combines them: the mean of the three signals' percentile ranks within the
video (low likelihood ranks high), in [0, 1]; higher means more likely wrong. It ranks a
video's frames (``poseshift outliers`` picks the highest); it is not comparable across
videos. ``benchmarks/adapt.md`` measures each signal's correlation with the true error.

The table goes to ``<video><scorer>_reliability.csv`` beside the ``.h5``: a separate file,
because DeepLabCut's readers call ``pd.read_hdf(path)`` without a key (a second key in the
.h5 breaks them) and expect exactly scorer / bodyparts / x, y, likelihood columns. What it
was computed with goes into the analysis' record (``outputs.note_derived``), which a new
analysis replaces (deleting the table), so a table is reused only for the very poses,
input size and precision it was computed from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from poseshift.data.hdf import read_hdf_safely
from poseshift.data.project import HDF_KEY
from poseshift.fsutil import write_atomic
from poseshift.predict.frames import probe_video, scaled_size
from poseshift.predict.outputs import note_derived, read_source, reliability_path
from poseshift.predict.predictor import Predictor
from poseshift.predict.video import predict_video

RESCALE = 0.8
COLUMNS = ("likelihood_mean", "likelihood_min", "rescale_px", "jump_px", "unreliability")


def _median_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.nanmedian(np.linalg.norm(a - b, axis=-1), axis=-1)


def jumps(xy: np.ndarray) -> np.ndarray:
    """(N,) median over keypoints of the distance to the neighbours' midpoint."""
    if len(xy) < 2:
        return np.zeros(len(xy))
    padded = np.concatenate([xy[1:2], xy, xy[-2:-1]])  # mirrored ends: one-sided there
    midpoint = (padded[:-2] + padded[2:]) / 2
    return _median_distance(xy, midpoint)


def percentile_rank(values: np.ndarray) -> np.ndarray:
    """Ranks scaled to [0, 1] (ties share their mean rank); one value ranks 0.5."""
    if len(values) < 2:
        return np.full(len(values), 0.5)
    ranks = pd.Series(values).rank(method="average").to_numpy()
    return (ranks - 1) / (len(values) - 1)


def reliability_table(poses: np.ndarray, rescaled: np.ndarray) -> pd.DataFrame:
    """Per-frame signals and ``unreliability`` from (N, K, 3) poses at two input scales."""
    likelihood = poses[..., 2]
    table = pd.DataFrame(
        {
            "likelihood_mean": likelihood.mean(axis=1),
            "likelihood_min": likelihood.min(axis=1),
            "rescale_px": _median_distance(poses[..., :2], rescaled[..., :2]),
            "jump_px": jumps(poses[..., :2]),
        }
    )
    table["unreliability"] = (
        percentile_rank(-table["likelihood_mean"].to_numpy())
        + percentile_rank(table["rescale_px"].to_numpy())
        + percentile_rank(table["jump_px"].to_numpy())
    ) / 3
    table.index.name = "frame"
    return table


def rescaled_poses(
    predictor: Predictor,
    video: str | Path,
    *,
    batch_size: int = 8,
    frames: int | None = None,
    resize: tuple[int, int] | None = None,
) -> np.ndarray:
    """The video's poses with frames at ``RESCALE`` times the analyzed input size
    (``resize``, else the predictor's input scale)."""
    info = probe_video(video)
    width, height = predictor.input_size(info.width, info.height, resize)
    size = scaled_size(width, height, RESCALE)
    return predict_video(
        predictor, video, batch_size=batch_size, resize=size, max_frames=frames
    ).poses


def _computed_with(autocast: str | None, resize: Sequence[int] | None) -> dict:
    """What a table depends on beyond the poses: the rescaled pass' precision and size."""
    return {"rescale": RESCALE, "autocast": autocast, "resize": list(resize) if resize else None}


def write_reliability(
    predictor: Predictor,
    video: str | Path,
    h5: str | Path,
    *,
    batch_size: int = 8,
    resize: tuple[int, int] | None = None,
) -> Path:
    """Score every frame of the analysis in ``h5`` and write its reliability.csv.

    ``predictor`` and ``resize`` must be the analysis' (its precision and ``--resize``);
    ``is_current`` holds only where they are.
    """
    frame = read_hdf_safely(h5, HDF_KEY, what="analysis file")
    poses = frame.to_numpy(dtype=np.float64).reshape(len(frame), -1, 3)
    rescaled = rescaled_poses(
        predictor, video, batch_size=batch_size, frames=len(poses), resize=resize
    )
    table = reliability_table(poses, rescaled[: len(poses)])
    path = write_atomic(reliability_path(h5), lambda tmp: table.to_csv(tmp, float_format="%.4f"))
    note_derived(h5, "reliability", _computed_with(predictor.autocast, resize))
    return path


def is_current(h5: str | Path) -> bool:
    """The reliability table of ``h5`` exists and was computed for the analysis recorded
    there: the same poses (a new analysis drops the note), input size and precision."""
    record = read_source(h5) or {}
    wanted = _computed_with(record.get("autocast"), record.get("resize"))
    return reliability_path(h5).is_file() and record.get("reliability") == wanted


def read_reliability(h5: str | Path) -> pd.DataFrame:
    """The table ``write_reliability`` wrote for ``h5``."""
    return pd.read_csv(reliability_path(h5), index_col="frame")
