"""Where a training step's time goes: data, augmentation, forward, loss, backward, optimizer.

The configuration of benchmarks/train_vs_dlc3.md's speed rounds: the openfield project,
ResNet-50 from scratch, batch 8, 448x448 crops, the `fast` recipe (AdamW) in bf16 autocast
(what `precision: auto` picks on this CPU) and in fp32, channels_last, in this process.
Each phase is timed separately around the trainer's own pieces (``TrainingStream`` for
decoded-and-cached images + augmentation, ``PoseNet.normalize`` + forward under autocast,
``ScoremapCodec.encode`` + ``pose_loss``, ``backward``, ``optimizer.step``: fused, as the
trainer builds it, and torch's default multi-tensor kernel for comparison); the first
``--warmup`` steps are dropped. Then ``torch.profiler`` over two more steps lists the
operators with the most self CPU time.

    .venv/bin/python benchmarks/train_step_profile.py --steps 8
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from _common import load, machine
from torch.utils.data import default_collate

from poseshift.data.augment import Augmenter
from poseshift.data.loader import TrainingStream
from poseshift.data.project import load_project
from poseshift.models.codec import ScoremapCodec
from poseshift.models.posenet import build_posenet
from poseshift.spec import resolve_settings
from poseshift.train.loss import pose_loss

OPENFIELD = (
    Path(__file__).resolve().parents[2] / "shared/data/openfield/openfield-Pranav-2018-10-30"
)
PHASES = ("data + augmentation", "forward", "targets + loss", "backward", "optimizer")


def profile(
    project: Path, dtype: torch.dtype | None, *, steps: int, warmup: int, batch: int, fused: bool
) -> dict:
    dataset = load_project(project)
    train, _ = resolve_settings("fast", {"augment": {"crop": [448, 448]}})
    augment = Augmenter(train.augment, (448, 448), dataset.bodyparts)
    stream = TrainingStream(dataset, range(len(dataset.images)), augment, seed=0)
    torch.manual_seed(0)
    model = build_posenet("resnet50", len(dataset.bodyparts), init="scratch")
    model = model.to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=1e-3, weight_decay=train.weight_decay, fused=fused
    )
    codec = ScoremapCodec(model.stride)
    times: dict[str, list[float]] = {phase: [] for phase in PHASES}

    def step(n: int, record: bool) -> None:
        marks = [time.perf_counter()]
        images, keypoints, _ = default_collate([stream[n * batch + i] for i in range(batch)])
        marks.append(time.perf_counter())
        x = model.normalize(images.permute(0, 3, 1, 2)).contiguous(
            memory_format=torch.channels_last
        )
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            outputs = {k: v.float() for k, v in model(x).items()}
        marks.append(time.perf_counter())
        targets = codec.encode(keypoints, tuple(outputs["scoremaps"].shape[-2:]))
        loss = pose_loss(outputs, targets, train.locref_loss_weight)["total"]
        marks.append(time.perf_counter())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        marks.append(time.perf_counter())
        optimizer.step()
        marks.append(time.perf_counter())
        if record:
            for phase, start, end in zip(PHASES, marks[:-1], marks[1:], strict=True):
                times[phase].append(end - start)

    for n in range(warmup + steps):
        step(n, record=n >= warmup)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for n in range(warmup + steps, warmup + steps + 2):
            step(n, record=False)
    medians = {phase: statistics.median(values) for phase, values in times.items()}
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)
    return {"medians": medians, "operators": table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=OPENFIELD)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    print(f"machine: {machine()}; load at start {load():.2f}")
    cases = [("bf16 autocast, fused AdamW", torch.bfloat16, True)]
    cases += [("bf16 autocast, AdamW foreach", torch.bfloat16, False), ("fp32, fused", None, True)]
    for label, dtype, fused in cases:
        result = profile(
            args.project, dtype, steps=args.steps, warmup=args.warmup, batch=args.batch, fused=fused
        )
        total = sum(result["medians"].values())
        print(f"\n### {label}: {args.batch / total:.2f} images/s (median step {total:.2f} s)\n")
        print("| phase | median s / step | share |\n|---|---|---|")
        for phase, seconds in result["medians"].items():
            print(f"| {phase} | {seconds:.3f} | {100 * seconds / total:.1f} % |")
        print(
            f"\nTop operators by self CPU time (2 steps, {label}):\n```\n{result['operators']}```"
        )
    print(f"load at end {load():.2f}")


if __name__ == "__main__":
    main()
