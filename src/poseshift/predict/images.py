"""Predictions on a project's labeled images (evaluation), through the one ``Predictor``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np

from poseshift.data.project import PoseDataset
from poseshift.predict.predictor import Predictor


def predict_images(
    predictor: Predictor,
    dataset: PoseDataset,
    indices: Sequence[int] | np.ndarray,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """(len(indices), K, 3) predictions x, y, confidence in original image pixels.

    Images are batched by size and resized by the predictor's input scale, as video frames.
    ``progress(n)`` is told how many images each batch predicted.
    """
    out = np.full((len(indices), len(dataset.bodyparts), 3), np.nan, dtype=np.float32)
    by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
    for row, index in enumerate(indices):
        by_size[tuple(dataset.image_sizes[index])].append(row)
    for rows in by_size.values():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            frames = [dataset.load_image(indices[r]) for r in chunk]
            out[chunk] = predictor.predict_frames(frames)
            if progress is not None:
                progress(len(chunk))
    return out
