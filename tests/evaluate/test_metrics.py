"""Metrics against hand-computed values; empty partitions report None, never NaN."""

from __future__ import annotations

import numpy as np
import pytest

from poseshift.evaluate.metrics import partition_metrics, pixel_errors, summarize


def test_hand_computed_values() -> None:
    truth = np.array([[[0, 0], [10, 10]], [[5, 5], [np.nan, np.nan]]], np.float32)
    predicted = np.array([[[3, 4, 0.9], [10, 16, 0.2]], [[5, 6, 0.7], [0, 0, 0.9]]], np.float32)
    errors = pixel_errors(predicted, truth)
    np.testing.assert_allclose(errors[0], [5, 6])
    assert errors[1, 0] == 1 and np.isnan(errors[1, 1])
    scales = np.array([10.0, 2.0])
    result = summarize(errors, scales, predicted[..., 2], threshold=0.3, pcutoff=0.6)
    assert result["error_px"] == pytest.approx(4.0)  # (5 + 6 + 1) / 3 labeled keypoints
    assert result["normalized_error"] == pytest.approx((0.5 + 0.6 + 0.5) / 3)
    assert result["pck"] == 0.0  # 0.5, 0.6, 0.5 are all above 0.3
    assert result["error_px_pcutoff"] == pytest.approx(3.0)  # (5 + 1) / 2 confident
    assert result["kept_fraction_pcutoff"] == pytest.approx(2 / 3)
    looser = summarize(errors, scales, threshold=0.55)
    assert looser["pck"] == pytest.approx(2 / 3)


def test_empty_partition_is_null() -> None:
    errors = np.full((0, 3), np.nan)
    result = partition_metrics(
        errors, np.zeros(0), np.zeros((0, 3)), bodyparts=["a", "b", "c"], groups=[]
    )
    assert result["n_images"] == 0
    assert result["error_px"] is None and result["normalized_error"] is None
    assert result["pck"] is None
    assert result["per_bodypart"]["a"]["error_px"] is None


def test_per_bodypart_and_group() -> None:
    errors = np.array([[1.0, np.nan], [3.0, 4.0]])
    result = partition_metrics(
        errors, np.ones(2), np.ones((2, 2)), bodyparts=["a", "b"], groups=["g1", "g2"]
    )
    assert result["per_bodypart"]["a"]["error_px"] == 2.0
    assert result["per_bodypart"]["b"]["error_px"] == 4.0
    assert result["per_group"]["g1"]["error_px"] == 1.0
    assert result["per_group"]["g2"]["error_px"] == 3.5
