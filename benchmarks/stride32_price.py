"""The price list behind ``backbone_stride: 32``: ResNet-50 training variants, one process.

Each variant trains a few bf16 steps on random images (batch 8, 448x448, 4 keypoints,
fused AdamW, channels_last: ``train_compile_check.random_batch_step``), in rounds so that a
drift of the machine shows; printed are GFLOP per training image (forward + backward,
counted by torch) and images/s (median of the steps after two warm-up steps). The frozen
variants only make sense with pretrained weights; they price what freezing would buy.

    OMP_WAIT_POLICY=PASSIVE ../.venv/bin/python stride32_price.py --rounds 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from _common import load
from torch import nn
from train_compile_check import BATCH, KEYPOINTS, random_batch_step
from train_roofline import training_flops

from poseshift.models.posenet import PoseNet, build_posenet


def stride16() -> PoseNet:
    return build_posenet("resnet50", KEYPOINTS, init="scratch")


def stride32() -> PoseNet:
    return build_posenet("resnet50", KEYPOINTS, init="scratch", backbone_stride=32)


def stride32_without_skip() -> PoseNet:
    """What the first stride-32 head was: the transposed convolution, no stride-16 map."""
    model = stride32()
    head = model.head
    head.lateral = None
    head.upsample.append(nn.ReLU(inplace=True))

    def forward(features: torch.Tensor, skip: torch.Tensor | None = None):
        features = head.upsample(features)
        return head.scoremap(features), head.locref(features)

    head.forward = forward  # type: ignore[method-assign]
    return model


def stride32_nearest() -> PoseNet:
    """The transposed convolution replaced by a 1x1 convolution and nearest upsampling."""
    model = stride32()
    model.head.upsample = nn.Sequential(
        nn.Conv2d(2048, 256, 1, bias=False), nn.BatchNorm2d(256), nn.Upsample(scale_factor=2)
    )
    return model


def frozen(stages: int) -> PoseNet:
    """Stride 16 with the stem and the first ``stages`` stages frozen (eval, no gradients)."""
    model = stride16()
    for name in ["conv1", "bn1", "layer1", "layer2"][: 2 + stages]:
        module = model.backbone.get_submodule(name)
        module.requires_grad_(False)
        module.train = lambda mode=True, m=module: nn.Module.train(m, False)  # stays in eval
    return model


VARIANTS: dict[str, Callable[[], PoseNet]] = {
    "stride 16, dilated (default)": stride16,
    "stride 32, no skip": stride32_without_skip,
    "stride 32 + skip (backbone_stride: 32)": stride32,
    "stride 32 + skip, 1x1 + nearest": stride32_nearest,
    "stride 16, stem + layer1 frozen": lambda: frozen(1),
    "stride 16, stem to layer2 frozen": lambda: frozen(2),
}


def images_per_s(model: PoseNet, steps: int) -> float:
    step = random_batch_step(model)
    seconds = []
    for _ in range(steps + 2):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    return BATCH / statistics.median(seconds[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"load at start {load():.2f}")
    gflop = {name: training_flops(make()) / 1e9 for name, make in VARIANTS.items()}
    speeds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for round_ in range(args.rounds):
        for name, make in VARIANTS.items():
            speeds[name].append(images_per_s(make(), args.steps))
            print(f"round {round_}: {name}: {speeds[name][-1]:.2f} images/s", flush=True)
    print()
    print("| ResNet-50 variant | GFLOP / training image | images/s |")
    print("|---|---|---|")
    for name in VARIANTS:
        rates = " / ".join(f"{v:.2f}" for v in speeds[name])
        print(f"| {name} | {gflop[name]:.1f} | {rates} |")
    print(f"\nload at end {load():.2f}")


if __name__ == "__main__":
    main()
