"""Evidence for a CPU bf16 finding: autocast re-casts every weight on every forward.

poseshift's bf16 on CPU is ``torch.autocast("cpu", dtype=torch.bfloat16)`` around an fp32
model (``VideoPredictor.forward``, ``trainer._make_step``). Autocast's weight-cast cache lives
only inside one autocast region, so every batch casts all ~25 M ResNet-50 weights to bf16
again: one ``aten::_to_copy`` per convolution, each its own small OpenMP region. This
script counts those ops with torch.profiler and times, interleaved, one forward of a
640x480 frame for: fp32, bf16 autocast (what poseshift ships) and a model cast to bf16 once
(no autocast, no per-call casts). Nothing in src/ is changed.

    .venv/bin/python benchmarks/profile_bf16_casts.py --reps 8
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import torch
from torch.profiler import ProfilerActivity, profile

from poseshift.models.posenet import build_posenet


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--reps", type=int, default=8)
    args = parser.parse_args()
    torch.manual_seed(0)
    fp32 = build_posenet(args.backbone, 4, init="scratch").eval()
    bf16 = copy.deepcopy(fp32).to(torch.bfloat16)
    x = torch.randn(args.batch, 3, 480, 640)
    xb = x.to(torch.bfloat16)

    @torch.inference_mode()
    def run_fp32():
        return fp32(x)

    @torch.inference_mode()
    def run_autocast():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return fp32(x)

    @torch.inference_mode()
    def run_cast_once():
        return bf16(xb)

    variants = {
        "fp32": run_fp32,
        "bf16 autocast (shipped)": run_autocast,
        "bf16 weights cast once": run_cast_once,
    }
    for name, fn in variants.items():
        fn()  # warm-up
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            fn()
        events = prof.key_averages()
        ops = sum(e.count for e in events if e.key.startswith("aten::"))
        casts = [e for e in events if e.key == "aten::_to_copy"]
        n_cast = casts[0].count if casts else 0
        t_cast = casts[0].cpu_time_total / 1e3 if casts else 0.0
        print(
            f"{name:26s}: {ops:5d} aten ops per forward, {n_cast:4d} aten::_to_copy "
            f"({t_cast:.1f} ms CPU)"
        )
    times = {name: [] for name in variants}
    for rep in range(args.reps):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
        print(
            f"rep {rep} load {os.getloadavg()[0]:.2f}: "
            + ", ".join(f"{n} {t[-1]:.3f}s" for n, t in times.items()),
            flush=True,
        )
    print(f"\n{args.backbone}, batch {args.batch}, 640x480, {torch.get_num_threads()} threads:")
    for name, values in times.items():
        median = sorted(values)[len(values) // 2]
        print(
            f"  {name:26s} median {median:.3f} s = {args.batch / median:.2f} frames/s, "
            f"min {min(values):.3f}, max {max(values):.3f}"
        )
    with torch.inference_mode():
        a = fp32(x)["scoremaps"].float()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            b = fp32(x)["scoremaps"].float()
        c = bf16(xb)["scoremaps"].float()
    print(
        f"  max |scoremap logit diff| vs fp32: autocast {(a - b).abs().max():.4f}, "
        f"cast once {(a - c).abs().max():.4f}"
    )


if __name__ == "__main__":
    main()
