"""DeepLabCut's training loss: sigmoid cross-entropy on scoremaps + Huber on locref.

Normalization follows the TensorFlow DeepLabCut used in the Horse-10 paper (``pose_net``):
``tf.losses.sigmoid_cross_entropy`` and ``huber_loss`` (``tf.losses.compute_weighted_loss``)
with their default reduction ``SUM_BY_NONZERO_WEIGHTS``, i.e. sum(weight * loss) divided by
the number of non-zero weights. So the scoremap term is a mean over the cells of labeled
keypoints and the locref term a mean over the cells inside the positive discs, which keeps
the small locref signal from being diluted by the map size. (DeepLabCut 3's PyTorch
criterions instead take a plain mean over every element, which makes the locref term
about map cells / disc cells times smaller, ~50x on a Horse-10 frame, at the same
``locref_loss_weight``.) One deliberate difference from TF DeepLabCut: there, unlabeled
keypoints were trained as all-negative maps (``weigh_part_predictions: false``); here the
codec gives them zero weight so a missing label never teaches "not there". When every
weight is zero a term is 0 with zero gradients, never NaN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pose_loss(
    outputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    locref_loss_weight: float = 0.05,
    huber: bool = True,
) -> dict[str, torch.Tensor]:
    """Loss parts for network ``outputs`` (``scoremaps``, ``locref``) and codec ``targets``.

    Returns float32 scalars ``scoremap``, ``locref`` (already multiplied by
    ``locref_loss_weight``, as DeepLabCut logs it) and ``total`` = their sum. ``huber``
    picks Huber (delta 1) for locref; otherwise squared error, DeepLabCut's alternative.
    """
    scoremap_elems = F.binary_cross_entropy_with_logits(
        outputs["scoremaps"].float(), targets["scoremap"], reduction="none"
    )
    locref_fn = F.huber_loss if huber else F.mse_loss
    locref_elems = locref_fn(outputs["locref"].float(), targets["locref"], reduction="none")
    scoremap = _mean_over_nonzero_weights(scoremap_elems, targets["scoremap_weight"])
    locref = locref_loss_weight * _mean_over_nonzero_weights(locref_elems, targets["locref_weight"])
    return {"total": scoremap + locref, "scoremap": scoremap, "locref": locref}


def _mean_over_nonzero_weights(losses: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """TF's SUM_BY_NONZERO_WEIGHTS reduction; 0 (not NaN) when all weights are zero."""
    count = torch.count_nonzero(weights).clamp(min=1)
    return (losses * weights).sum() / count
