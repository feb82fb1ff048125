"""A fast ResNet-50 training step in this process: eager vs torch.compile, channels_last vs not.

Random uint8 images (speed does not depend on the pixels), batch 8 at 448x448, 4 keypoints,
bf16 autocast and fused AdamW as the `fast` preset trains on this CPU; the median of the
steps after two warm-up steps. Answers whether ``execution.compile`` (Inductor on forward
and backward) or the memory format would move training towards 4x DeepLabCut 3.

    OMP_WAIT_POLICY=PASSIVE ../.venv/bin/python train_compile_check.py eager --steps 5
    OMP_WAIT_POLICY=PASSIVE ../.venv/bin/python train_compile_check.py compile --steps 5
    OMP_WAIT_POLICY=PASSIVE ../.venv/bin/python train_compile_check.py contiguous --steps 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from _common import load

from poseshift.models.codec import ScoremapCodec
from poseshift.models.posenet import PoseNet, build_posenet
from poseshift.train.loss import pose_loss

BATCH, SIZE, KEYPOINTS = 8, 448, 4


def fast_step(
    model: PoseNet,
    *,
    forward: Callable[[torch.Tensor], dict[str, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    codec: ScoremapCodec,
    images: torch.Tensor,
    keypoints: torch.Tensor,
    memory: torch.memory_format = torch.channels_last,
) -> None:
    """One step on (B, H, W, 3) uint8 ``images`` as the trainer runs it in bf16."""
    x = model.normalize(images.permute(0, 3, 1, 2)).contiguous(memory_format=memory)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = {k: v.float() for k, v in forward(x).items()}
    targets = codec.encode(keypoints, tuple(outputs["scoremaps"].shape[-2:]))
    optimizer.zero_grad(set_to_none=True)
    pose_loss(outputs, targets)["total"].backward()
    optimizer.step()


def random_batch_step(
    model: PoseNet,
    *,
    forward: Callable[[torch.Tensor], dict[str, torch.Tensor]] | None = None,
    memory: torch.memory_format = torch.channels_last,
) -> Callable[[], None]:
    """``fast_step`` on one fixed random batch (speed does not depend on the pixels), with
    fused AdamW over ``model``'s trainable parameters; ``model`` is put in ``memory`` format
    and training mode."""
    model.to(memory_format=memory).train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, fused=True)
    codec = ScoremapCodec(model.stride)
    images = torch.randint(0, 255, (BATCH, SIZE, SIZE, 3), dtype=torch.uint8)
    keypoints = torch.rand(BATCH, KEYPOINTS, 2) * (SIZE - 1)

    def step() -> None:
        fast_step(
            model, forward=forward or model, optimizer=optimizer, codec=codec, images=images,
            keypoints=keypoints, memory=memory,
        )  # fmt: skip

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=["eager", "compile", "contiguous"])
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    memory = torch.contiguous_format if args.variant == "contiguous" else torch.channels_last
    model = build_posenet("resnet50", KEYPOINTS, init="scratch")
    forward = torch.compile(model) if args.variant == "compile" else model
    step = random_batch_step(model, forward=forward, memory=memory)
    load_before, seconds = load(), []
    for _ in range(args.steps + 2):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds[2:])
    print(
        f"{args.variant}: {BATCH / median:.2f} images/s (median step {median:.2f} s; steps "
        f"{[round(s, 2) for s in seconds]}; load {load_before:.2f} -> {load():.2f})"
    )


if __name__ == "__main__":
    main()
