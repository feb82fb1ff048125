"""What a training BatchNorm costs on this CPU, in passes over its input at memory speed.

Times torch's own forward (batch statistics) and backward of a bf16 channels_last BatchNorm,
as the bf16 training step runs them, on three ResNet-50 map shapes of a batch of 8 at
448x448, against an elementwise add of two such maps (two reads and one write: three
passes). A kernel at about 3 passes forward and 5 backward is as memory-bound as an
unfused one can be; far more would mean a slow path worth replacing. Freed memory stays in
glibc's heap, as in ``poseshift train`` (``memory_policy.keep_freed_memory``).

    OMP_WAIT_POLICY=PASSIVE ../.venv/bin/python batchnorm_passes.py
"""

from __future__ import annotations

import torch
from train_roofline import median_seconds

from poseshift.memory_policy import keep_freed_memory

SHAPES = [(8, 64, 224, 224), (8, 256, 112, 112), (8, 1024, 28, 28)]
REPEATS = 15


def passes(shape: tuple[int, int, int, int]) -> str:
    """BatchNorm forward and backward on one map shape, in passes at the add's speed."""
    x = torch.randn(shape).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    grad = torch.randn_like(x)
    channels = shape[1]
    weight, bias = torch.ones(channels), torch.zeros(channels)
    running_mean, running_var = torch.zeros(channels), torch.ones(channels)
    args = (weight, bias, running_mean, running_var, True, 0.1, 1e-5)
    _, mean, invstd = torch.ops.aten.native_batch_norm(x, *args)
    backward_args = (grad, x, weight, running_mean, running_var, mean, invstd, True, 1e-5)
    add = median_seconds(lambda: x + grad, REPEATS)
    forward = median_seconds(lambda: torch.ops.aten.native_batch_norm(x, *args), REPEATS)
    backward = median_seconds(
        lambda: torch.ops.aten.native_batch_norm_backward(*backward_args, [True, True, True]),
        REPEATS,
    )
    megabytes, one_pass = x.numel() * x.element_size() / 1e6, add / 3
    return (
        f"{shape}: {megabytes:.0f} MB; add {add * 1e3:.1f} ms "
        f"({megabytes / one_pass / 1e3:.0f} GB/s a pass); BatchNorm forward "
        f"{forward * 1e3:.1f} ms = {forward / one_pass:.1f} passes, backward "
        f"{backward * 1e3:.1f} ms = {backward / one_pass:.1f} passes"
    )


def main() -> None:
    keep_freed_memory()
    torch.manual_seed(0)
    for shape in SHAPES:
        print(passes(shape), flush=True)


if __name__ == "__main__":
    main()
