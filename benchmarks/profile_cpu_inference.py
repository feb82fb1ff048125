"""Evidence for a CPU inference finding: VideoPredictor's memory format on CPU.

``poseshift.predict.video.VideoPredictor`` runs the network in channels_last only on CUDA
(``self.memory_format = torch.channels_last if self.cuda else torch.contiguous_format``).
This script times ``VideoPredictor.forward`` on 640x480 frames with the shipped setting
(NCHW on CPU) and with channels_last (the model and input converted here, nothing in src/
changed), fp32 and bf16, interleaved so that other jobs on the machine hit both alike.

    .venv/bin/python benchmarks/profile_cpu_inference.py --backbone resnet50 --batch 8 --reps 3
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from poseshift.models.codec import ScoremapCodec
from poseshift.models.posenet import build_posenet
from poseshift.predict.video import VideoPredictor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--size", default="640x480")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    torch.manual_seed(0)
    model = build_posenet(args.backbone, 4, init="scratch")
    frames = torch.randint(0, 255, (args.batch, height, width, 3), dtype=torch.uint8)
    scale = torch.ones(2)
    predictors = {}
    for precision in ("fp32", "bf16"):
        for fmt in ("shipped (NCHW on CPU)", "channels_last"):
            p = VideoPredictor(model, ScoremapCodec(), "cpu", precision)
            if fmt == "channels_last":
                p.memory_format = torch.channels_last
            predictors[(precision, fmt)] = p
    times = {key: [] for key in predictors}
    outputs = {}
    for rep in range(args.reps + 1):  # rep 0: warm-up (oneDNN primitive creation)
        for key, p in predictors.items():
            p.model.to(memory_format=p.memory_format)
            start = time.perf_counter()
            outputs[key] = p.predict_batch(frames, scale)
            elapsed = time.perf_counter() - start
            if rep:
                times[key].append(elapsed)
        print(
            f"rep {rep} load {os.getloadavg()[0]:.2f}: "
            + ", ".join(f"{k[0]}/{k[1]} {times[k][-1] if rep else elapsed:.2f}s" for k in times),
            flush=True,
        )
    print(
        f"\n{args.backbone}, batch {args.batch}, {width}x{height}, torch threads "
        f"{torch.get_num_threads()}; frames/s = batch / median seconds"
    )
    for key, values in times.items():
        median = sorted(values)[len(values) // 2]
        print(f"  {key[0]:5s} {key[1]:22s} {args.batch / median:6.2f} frames/s  ({values})")
    for precision in ("fp32", "bf16"):
        a = outputs[(precision, "shipped (NCHW on CPU)")]
        b = outputs[(precision, "channels_last")]
        print(
            f"  {precision}: max |pose difference| NCHW vs channels_last: "
            f"{(a[..., :2] - b[..., :2]).abs().max().item():.4f} px"
        )


if __name__ == "__main__":
    main()
