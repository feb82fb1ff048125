"""Errors and PCK, as in the paper: pixel error, error normalized by the individual's
nose-eye distance, and PCK at 0.3 of it; means over labeled keypoints only.

Every summary is NaN-safe: a partition with no labeled keypoint reports ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PCK_THRESHOLD = 0.3


def pixel_errors(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Euclidean error (N, K); NaN where the keypoint is unlabeled."""
    return np.linalg.norm(np.asarray(predicted)[..., :2] - np.asarray(truth)[..., :2], axis=-1)


def _mean(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else None


def summarize(
    errors: np.ndarray,
    scales: np.ndarray,
    confidence: np.ndarray | None = None,
    threshold: float = PCK_THRESHOLD,
    pcutoff: float | None = None,
) -> dict:
    """Mean pixel error, normalized error and PCK over the labeled entries of (N, K) errors.

    ``scales`` (N,) divides each image's errors. With ``pcutoff``, DeepLabCut's variant is
    added: the error over keypoints predicted with confidence >= pcutoff, and the kept share.
    """
    errors = np.asarray(errors, dtype=np.float64)
    normalized = errors / np.asarray(scales, dtype=np.float64)[:, None]
    labeled = ~np.isnan(errors)
    result = {
        "n_images": int(errors.shape[0]),
        "n_keypoints": int(labeled.sum()),
        "error_px": _mean(errors),
        "normalized_error": _mean(normalized),
        "pck": float((normalized[labeled] <= threshold).mean()) if labeled.any() else None,
        "pck_threshold": threshold,
    }
    if pcutoff is not None and confidence is not None:
        confident = labeled & (np.asarray(confidence) >= pcutoff)
        result["pcutoff"] = pcutoff
        result["error_px_pcutoff"] = _mean(np.where(confident, errors, np.nan))
        result["kept_fraction_pcutoff"] = (
            float(confident.sum() / labeled.sum()) if labeled.any() else None
        )
    return result


def partition_metrics(
    errors: np.ndarray,
    scales: np.ndarray,
    confidence: np.ndarray,
    *,
    bodyparts: Sequence[str],
    groups: Sequence[str],
    threshold: float = PCK_THRESHOLD,
    pcutoff: float | None = None,
) -> dict:
    """Summary of one partition, plus the same summary per bodypart and per group."""
    result = summarize(errors, scales, confidence, threshold, pcutoff)
    result["per_bodypart"] = {
        name: summarize(errors[:, [k]], scales, confidence[:, [k]], threshold, pcutoff)
        for k, name in enumerate(bodyparts)
    }
    group_of = np.asarray(groups)
    result["per_group"] = {
        str(g): summarize(
            errors[group_of == g],
            scales[group_of == g],
            confidence[group_of == g],
            threshold,
            pcutoff,
        )
        for g in dict.fromkeys(group_of.tolist())
    }
    return result
