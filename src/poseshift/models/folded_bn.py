"""Re-create the BatchNorm layers that TFLite folded into its convolutions.

A TFLite classifier has no BatchNorm: each convolution already computes ``W x + b``. A pose
network trains with BatchNorm in training mode, where each layer normalizes by the
statistics of its batch, so an identity BatchNorm (mean 0, var 1) would rescale every
activation by its batch standard deviation and destroy the pretrained function. Freezing
BatchNorm would keep it, but the paper's MobileNetV2s (and the ``fast`` preset's every
backbone) train their BatchNorm layers, and frozen layers would make this arm a different
recipe (docs/protocol.md, rows 6-8).

So the statistics are measured instead: the folded network is run in eval mode on natural
photos, and each BatchNorm gets the per-channel mean m and variance v of its input, with
weight sqrt(v + eps) and bias b + m. In eval mode that is exactly ``x + b`` again (the
folded function, to rounding), and in training mode a batch whose statistics resemble
those photos' passes through nearly unchanged, as it does through a network whose
BatchNorm was never folded. One pass suffices: the eval-mode function does not change
while the statistics are written, so every layer sees the activations it will see later.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from poseshift.errors import PoseshiftError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
MIN_IMAGES = 4
CALIBRATION_SIZE = 224


def calibration_images(folder: Path, size: int = CALIBRATION_SIZE) -> torch.Tensor:
    """(N, 3, size, size) uint8 crops of the photos in ``folder``: centre, corners, flips."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < MIN_IMAGES:
        raise PoseshiftError(
            f"{folder} holds {len(files)} photos; re-creating the folded BatchNorm statistics "
            f"needs at least {MIN_IMAGES} natural photos (pass --calibration DIR)"
        )
    crops = []
    for file in files:
        image = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if image is None:
            raise PoseshiftError(f"{file} is not a readable image (calibration photos)")
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        scale = (size * 8 / 7) / min(image.shape[:2])
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        h, w = image.shape[:2]
        for top, left in ((h - size) // 2, (w - size) // 2), (0, 0), (h - size, w - size):
            crop = image[top : top + size, left : left + size]
            crops += [crop, crop[:, ::-1]]
    return torch.from_numpy(np.ascontiguousarray(np.stack(crops))).permute(0, 3, 1, 2)


@torch.no_grad()
def recreate_batchnorm(
    model: nn.Module, images: torch.Tensor, normalize, batch_size: int = 16
) -> int:
    """Give every BatchNorm of ``model`` the statistics of its input on ``images``.

    ``model``'s BatchNorm layers must hold the folded bias with identity statistics (as
    ``tf_formats.tflite_to_timm`` writes them). Returns the number of layers re-created.
    """
    layers = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    sums = {id(m): [0.0, 0.0, 0] for m in layers}

    def record(module: nn.Module, inputs: tuple[torch.Tensor]) -> None:
        x = inputs[0].double()
        acc = sums[id(module)]
        acc[0] = acc[0] + x.sum(dim=(0, 2, 3))
        acc[1] = acc[1] + (x * x).sum(dim=(0, 2, 3))
        acc[2] += x.numel() // x.shape[1]

    hooks = [m.register_forward_pre_hook(record) for m in layers]
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(images), batch_size):
            model(normalize(images[start : start + batch_size]))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    for m in layers:
        total, squares, count = sums[id(m)]
        mean = total / count
        var = (squares / count - mean * mean).clamp_min(0.0)
        m.running_mean.copy_(mean.float())
        m.running_var.copy_(var.float())
        m.bias.add_(mean.float())
        m.weight.copy_((var + m.eps).sqrt().float())
    return len(layers)
