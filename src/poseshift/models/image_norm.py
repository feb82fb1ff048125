"""BatchNorm by each image's own statistics, in training and at inference.

DeepLabCut-TF built its MobileNetV2s under TF-slim's ``training_scope()`` for training and
for evaluation alike (docs/protocol.md, row 7): BatchNorm normalized by the statistics of
the batch in hand, which with the paper's batch 1 and one image at a time at test is each
image by its own spatial mean and variance; the moving averages were never used. These
layers do that for any batch size, so an image's result never depends on the other images
of its batch: a network trained at batch 1 predicts a batch of video frames exactly as it
would predict them one by one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _contiguous(grad: torch.Tensor) -> torch.Tensor:
    return grad.contiguous()


class SharedBatchNorm(nn.BatchNorm2d):
    """A BatchNorm2d (or timm's BatchNormAct2d) that normalizes another way, sharing the
    parameters and buffers of the layer it replaces: the optimizer and checkpoints see the
    same tensors under the same names."""

    def __init__(self, bn: nn.BatchNorm2d) -> None:
        super().__init__(
            bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats, device="meta"
        )
        self.weight, self.bias = bn.weight, bn.bias
        self.running_mean, self.running_var = bn.running_mean, bn.running_var
        self.num_batches_tracked = bn.num_batches_tracked
        self.drop = getattr(bn, "drop", nn.Identity())  # BatchNormAct2d: norm, drop, act
        self.act = getattr(bn, "act", nn.Identity())


def replace_batchnorm(module: nn.Module, layer: type[SharedBatchNorm]) -> nn.Module:
    """Replace every plain BatchNorm2d inside ``module`` (in place) by ``layer(bn)``; layers
    already replaced (any SharedBatchNorm) stay as they are."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d) and not isinstance(child, SharedBatchNorm):
            setattr(module, name, layer(child))
        else:
            replace_batchnorm(child, layer)
    return module


class PerImageBatchNorm(SharedBatchNorm):
    """BatchNorm normalizing every image by its own statistics.

    Keeps the replaced layer's (unused) running statistics, so checkpoints hold the same
    names; ``track_running_stats`` is False, which tells test-time adaptation that there are
    no running statistics to re-estimate.
    """

    def __init__(self, bn: nn.BatchNorm2d) -> None:
        super().__init__(bn)
        self.track_running_stats = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)
        if y.requires_grad:
            # F.instance_norm runs BatchNorm on a contiguous (1, B * C, H, W) view; for one
            # image a channels_last gradient reaches that BatchNorm's backward as it is, and
            # torch's CPU kernel (2.14) then computes wrong gradients (input and gradient in
            # different memory formats at batch 1): batch 1 trained another network.
            y.register_hook(_contiguous)
        return self.act(self.drop(y))


def normalize_per_image(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d inside ``module`` (in place) by a PerImageBatchNorm."""
    return replace_batchnorm(module, PerImageBatchNorm)
