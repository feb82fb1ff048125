"""pose_loss: hand-computed values, masking and the all-zero-weight edge case."""

from __future__ import annotations

import math

import pytest
import torch

from poseshift.models.codec import ScoremapCodec
from poseshift.train.loss import pose_loss


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def _tiny_example() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """One keypoint on a 2x2 map; one scoremap cell and most locref cells weigh zero."""
    outputs = {
        "scoremaps": torch.tensor([[[[0.0, 2.0], [-1.0, 0.0]]]]),
        "locref": torch.zeros(1, 2, 2, 2),
    }
    locref_target = torch.zeros(1, 2, 2, 2)
    locref_target[0, :, 0, 0] = torch.tensor([0.5, -2.0])
    locref_target[0, 0, 1, 1] = 100.0  # zero weight: must not count
    locref_weight = torch.zeros(1, 2, 2, 2)
    locref_weight[0, :, 0, 0] = 1.0
    targets = {
        "scoremap": torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]]),
        "scoremap_weight": torch.tensor([[[[1.0, 1.0], [0.0, 1.0]]]]),
        "locref": locref_target,
        "locref_weight": locref_weight,
    }
    return outputs, targets


def test_hand_computed_huber() -> None:
    outputs, targets = _tiny_example()
    loss = pose_loss(outputs, targets)
    # sum over the 3 non-zero weights / 3; logit -1 is masked out
    expected_scoremap = (_softplus(0.0) + _softplus(2.0) + _softplus(0.0)) / 3
    expected_locref = 0.05 * (0.5 * 0.5**2 + (2.0 - 0.5)) / 2
    assert loss["scoremap"].item() == pytest.approx(expected_scoremap, rel=1e-6)
    assert loss["locref"].item() == pytest.approx(expected_locref, rel=1e-6)
    assert loss["total"].item() == pytest.approx(expected_scoremap + expected_locref, rel=1e-6)


def test_hand_computed_squared_error_without_huber() -> None:
    outputs, targets = _tiny_example()
    loss = pose_loss(outputs, targets, locref_loss_weight=1.0, huber=False)
    assert loss["locref"].item() == pytest.approx((0.5**2 + 2.0**2) / 2, rel=1e-6)


def test_all_zero_weights_give_zero_loss_and_finite_gradients() -> None:
    outputs, targets = _tiny_example()
    targets = {k: torch.zeros_like(v) if k.endswith("weight") else v for k, v in targets.items()}
    outputs = {k: v.clone().requires_grad_() for k, v in outputs.items()}
    loss = pose_loss(outputs, targets)
    loss["total"].backward()
    assert loss["total"].item() == 0.0
    assert all(torch.isfinite(v.grad).all() for v in outputs.values())


def test_unlabeled_keypoints_do_not_change_the_loss() -> None:
    codec = ScoremapCodec()
    generator = torch.Generator().manual_seed(0)
    keypoints = torch.tensor([[[20.0, 13.0], [float("nan"), float("nan")]]])
    outputs = {
        "scoremaps": torch.randn(1, 2, 5, 5, generator=generator),
        "locref": torch.randn(1, 4, 5, 5, generator=generator),
    }
    loss = pose_loss(outputs, codec.encode(keypoints, (5, 5)))["total"]
    alone = pose_loss(
        {"scoremaps": outputs["scoremaps"][:, :1], "locref": outputs["locref"][:, :2]},
        codec.encode(keypoints[:, :1], (5, 5)),
    )["total"]
    outputs["scoremaps"][:, 1] += 50.0
    outputs["locref"][:, 2:] -= 50.0
    perturbed = pose_loss(outputs, codec.encode(keypoints, (5, 5)))["total"]
    assert loss.item() == pytest.approx(alone.item(), rel=1e-6)
    assert perturbed.item() == pytest.approx(loss.item(), rel=1e-6)
