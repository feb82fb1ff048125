"""Images with ground truth (circles) and predictions (crosses) for a quick visual check."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from poseshift.fsutil import write_atomic


def draw_comparison(image: np.ndarray, truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Green circle = label, red cross = prediction, a line joins the two."""
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
    canvas = draw_comparison(image, truth, predicted)
    # The temporary file keeps the .png suffix, which cv2 needs to pick the encoder.
    write_atomic(path, lambda tmp: cv2.imwrite(str(tmp), canvas))
