"""BatchNorm over the global batch of data-parallel training (the ranks' statistics pooled).

With several processes each rank sees a slice of the batch; normalizing by the slice would
train another network than one process does. These layers share the parameters and buffers
of the layers they replace and normalize by the statistics of the whole global batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from poseshift.models.image_norm import SharedBatchNorm, replace_batchnorm


class _GlobalNormalize(torch.autograd.Function):
    """(x - mean) / std with the global batch's statistics; backward by BatchNorm's formula.

    Forward: all-reduce the sums, then the squared deviations about the global mean (two
    passes, as one process computes them). Backward: all-reduce the two sums BatchNorm's
    gradient needs, ``dx = (g - mean(g) - x_hat * mean(g * x_hat)) / std``, as torch's
    SyncBatchNorm does; each rank's weight and bias gradients stay local (DDP averages them).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, eps: float):
        local = torch.cat([x.sum((0, 2, 3)), x.new_tensor([x.numel() / x.shape[1]])])
        dist.all_reduce(local)
        count, mean = local[-1], local[:-1] / local[-1]
        centered = x - mean.view(1, -1, 1, 1)
        var = (centered * centered).sum((0, 2, 3))
        dist.all_reduce(var)
        var /= count
        invstd = torch.rsqrt(var + eps)
        x_hat = centered * invstd.view(1, -1, 1, 1)
        ctx.save_for_backward(x_hat, invstd, count)
        ctx.mark_non_differentiable(mean, var, count)
        return x_hat, mean, var, count

    @staticmethod
    def backward(ctx, grad: torch.Tensor, *_unused):
        x_hat, invstd, count = ctx.saved_tensors
        sums = torch.cat([grad.sum((0, 2, 3)), (grad * x_hat).sum((0, 2, 3))])
        dist.all_reduce(sums)
        mean_grad, mean_grad_x_hat = (sums / count).view(2, -1, 1, 1)
        grad_x = (grad - mean_grad - x_hat * mean_grad_x_hat) * invstd.view(1, -1, 1, 1)
        return grad_x, None


class GlobalBatchNorm(SharedBatchNorm):
    """BatchNorm2d (or timm's BatchNormAct2d) normalizing with the global batch's statistics."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return self.act(self.drop(super().forward(x)))
        xf = x.to(torch.promote_types(x.dtype, torch.float32))  # statistics in fp32 or better
        y, mean, var, count = _GlobalNormalize.apply(xf, self.eps)
        if self.track_running_stats:
            assert self.num_batches_tracked is not None  # track_running_stats made them
            assert self.running_mean is not None and self.running_var is not None
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = self.momentum
                if factor is None:  # cumulative moving average, as BatchNorm2d does
                    factor = 1.0 / float(self.num_batches_tracked)
                unbiased = var * count / (count - 1).clamp(min=1)
                self.running_mean.mul_(1 - factor).add_(factor * mean)
                self.running_var.mul_(1 - factor).add_(factor * unbiased)
        if self.affine:
            y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return self.act(self.drop(y.to(x.dtype)))


def global_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d inside ``module`` (in place) by a GlobalBatchNorm; layers
    normalizing per image already train the same on any number of processes."""
    return replace_batchnorm(module, GlobalBatchNorm)
