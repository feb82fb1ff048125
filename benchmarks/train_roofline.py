"""How close a bf16 ResNet-50 training step is to what this CPU can compute at all.

Counts the floating-point operations of one `fast` training image (ResNet-50 at stride 16
plus the DeepLabCut head, 448x448, forward and backward, torch's FlopCounterMode: 2 per
multiply-add) and times, in this process, with all cores: a large bf16 matrix product and a
bf16 3x3 convolution forward + backward (oneDNN's best case on this CPU), and a bf16
training step of the whole network (batch 8, channels_last, autocast, as the trainer runs
it). The step's GFLOP/s against the matrix product's says how much faster any kernel work
could make training; the images/s a given lead over DeepLabCut 3 needs follow from
DeepLabCut 3's images/s measured in the same session (``--dlc-images-per-s``).

    OMP_WAIT_POLICY=PASSIVE ../.venv/bin/python train_roofline.py --dlc-images-per-s 0.615
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from _common import load, machine
from torch.utils.flop_counter import FlopCounterMode
from train_compile_check import BATCH, KEYPOINTS, SIZE, random_batch_step

from poseshift.models.posenet import PoseNet, build_posenet


def median_seconds(work: Callable[[], object], reps: int) -> float:
    work()  # warm-up: oneDNN picks and caches its kernels
    seconds = []
    for _ in range(reps):
        start = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def training_flops(model: torch.nn.Module) -> float:
    """Forward + backward floating-point operations of one image."""
    image = torch.randn(1, 3, SIZE, SIZE)
    counter = FlopCounterMode(display=False)
    with counter:
        outputs = model(image)
        (outputs["scoremaps"].sum() + outputs["locref"].sum()).backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def gemm_gflops(reps: int) -> float:
    a, b = (torch.randn(2048, 2048, dtype=torch.bfloat16) for _ in range(2))
    return 2 * 2048**3 / median_seconds(lambda: a @ b, reps) / 1e9


def conv_gflops(reps: int) -> float:
    """A layer3-like 3x3 convolution (256 channels, 28x28, batch 8), forward + backward."""
    conv = torch.nn.Conv2d(256, 256, 3, padding=1, bias=False).to(memory_format=torch.channels_last)
    x = torch.randn(BATCH, 256, 28, 28).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = conv(x)
        y.float().sum().backward()

    flops = 3 * 2 * BATCH * 256 * 256 * 9 * 28 * 28  # forward, grad input, grad weight
    return flops / median_seconds(step, reps) / 1e9


def step_images_per_s(model: PoseNet, reps: int) -> float:
    """The step of train_compile_check.py's ``eager`` variant (the trainer's pieces)."""
    step = random_batch_step(model)
    return BATCH / median_seconds(step, reps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--dlc-images-per-s", type=float, required=True)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = build_posenet("resnet50", KEYPOINTS, init="scratch")
    load_before = load()
    flops = training_flops(model)
    gemm, conv = gemm_gflops(10 * args.reps), conv_gflops(args.reps)
    images_per_s = step_images_per_s(model, args.reps)
    achieved = flops * images_per_s / 1e9
    print(f"machine {machine()}; load {load_before:.2f} -> {load():.2f}")
    print(f"one training image: {flops / 1e9:.0f} GFLOP (forward + backward, 448x448)")
    print(f"bf16 matrix product 2048^3: {gemm:.0f} GFLOP/s")
    print(f"bf16 3x3 convolution forward + backward: {conv:.0f} GFLOP/s")
    print(
        f"bf16 training step, batch {BATCH}: {images_per_s:.2f} images/s = {achieved:.0f} GFLOP/s "
        f"({100 * achieved / gemm:.0f} % of the matrix product)"
    )
    for lead in (3, 4):
        needed = lead * args.dlc_images_per_s
        print(
            f"{lead}x DeepLabCut 3 ({args.dlc_images_per_s} images/s): {needed:.2f} images/s = "
            f"{needed * flops / 1e9:.0f} GFLOP/s ({100 * needed * flops / 1e9 / gemm:.0f} % "
            "of the matrix product)"
        )


if __name__ == "__main__":
    main()
