"""ResNet-50 at 640x480, network alone: bf16 compiled vs int8 with the last stage in fp32 / bf16.

Random weights (speed does not depend on them), batch 1, channels_last, median of 6 frames
after the compiling call. ``int8``: ``poseshift.predict.int8.quantize_posenet`` as
``analyze --precision int8`` runs it (layer4 and the head in fp32); ``int8-bf16``: the same
graph compiled under bf16 autocast (Inductor's "int8-mixed-bf16" recipe), which would run
the unquantized layer4 in bf16.

    OMP_WAIT_POLICY=PASSIVE ../.venv/bin/python int8_mixed_check.py bf16|int8|int8-bf16
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
import torch._inductor.config as inductor
from _common import load

from poseshift.models.posenet import build_posenet
from poseshift.predict.int8 import quantize_posenet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=["bf16", "int8", "int8-bf16"])
    parser.add_argument("--reps", type=int, default=6)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    model = build_posenet("resnet50", 4, init="scratch").eval()
    model = model.to(memory_format=torch.channels_last)
    frames = [
        torch.randn(1, 3, 480, 640).contiguous(memory_format=torch.channels_last) for _ in range(4)
    ]
    if args.variant == "bf16":
        network = torch.compile(model, dynamic=False, options={"freezing": True})
        freezing = False  # already an option of this compile
    else:
        with torch.no_grad():
            network = torch.compile(quantize_posenet(model, frames[:2]), dynamic=False)
        freezing = True  # as predict.int8.CompiledQuantized calls it
    bf16 = args.variant != "int8"
    load_before, seconds = load(), []
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    with torch.no_grad(), inductor.patch(freezing=freezing), autocast:
        start = time.perf_counter()
        network(frames[0])
        first = time.perf_counter() - start
        for i in range(args.reps):
            start = time.perf_counter()
            network(frames[i % len(frames)])
            seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    print(
        f"{args.variant}: {1000 * median:.0f} ms/frame ({1 / median:.2f} frames/s), compiling "
        f"call {first:.0f} s; load {load_before:.2f} -> {load():.2f}"
    )


if __name__ == "__main__":
    main()
