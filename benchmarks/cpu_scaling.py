"""Cost as the work grows on the CPU: training and video throughput vs image size and batch.

For MobileNetV2-0.35, EfficientNet-Lite0 and ResNet-50 (poseshift's PoseNet, random
weights: speed does not depend on them), at square inputs of ``--sizes`` and batch sizes
``--batches``:

- training images/s: one optimizer step = forward + DeepLabCut-style loss stand-in (mean of
  the maps) + backward + AdamW, bf16 autocast where the CPU has native bf16 (what the
  ``fast`` preset does), channels_last; the first step (warm-up) is not timed;
- inference frames/s: the ``Predictor`` (network + pose decoding) on uint8 frames,
  eager (``compile=False``: a compilation per shape would cost more than the whole table)
  in fp32 and bf16.

images/s are wall clock; CPU-s per image (process user + sys) stand next to them, and the
load average before each cell, since the machine is shared.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/cpu_scaling.py --out /tmp/cpu_scaling.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from _common import load, machine

from poseshift.device import autocast_dtype
from poseshift.models.codec import ScoremapCodec
from poseshift.models.posenet import PoseNet
from poseshift.predict.predictor import Predictor

BACKBONES = ("mobilenetv2_035", "efficientnet_lite0", "resnet50")


def timed(step, reps: int, images: int) -> dict:
    step()  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(reps):
        step()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"images_per_s": reps * images / wall, "cpu_s_per_image": cpu / (reps * images)}


def train_cell(backbone: str, size: int, batch: int, reps: int) -> dict:
    model = PoseNet(backbone, 4).train().to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    dtype = autocast_dtype("auto", torch.device("cpu"))

    def step() -> None:
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(images)
            loss = out["scoremaps"].float().mean() + out["locref"].float().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return timed(step, reps, batch)


def video_cell(backbone: str, size: int, batch: int, precision: str, reps: int) -> dict:
    model = PoseNet(backbone, 4)
    predictor = Predictor(
        model, ScoremapCodec(8, 17, 7.2801), device="cpu", precision=precision, compile=False
    )
    frames = torch.randint(0, 255, (batch, size, size, 3), dtype=torch.uint8)
    scale = torch.ones(2)
    return timed(lambda: predictor.predict_batch(frames, scale), reps, batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES))
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    report: dict = {"machine": machine(), "threads": torch.get_num_threads(), "cells": []}
    for backbone in args.backbones:
        for size in args.sizes:
            for batch in args.batches:
                before = load()
                cell = {"backbone": backbone, "size": size, "batch": batch, "load": before}
                cell["train"] = train_cell(backbone, size, batch, args.reps)
                for precision in ("fp32", "bf16"):
                    cell[f"video_{precision}"] = video_cell(
                        backbone, size, batch, precision, args.reps
                    )
                report["cells"].append(cell)
                print(json.dumps(cell), flush=True)
                args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
