"""Where a ``backbone_stride: 32`` bf16 training step goes: oneDNN's primitives, then the rest.

ResNet-50 from scratch, batch 8, 448x448 random images, fused AdamW, channels_last
(``train_compile_check.random_batch_step``). After warm-up steps, one step runs with
oneDNN's verbose log (its own execution time per primitive, summed by kind and kernel) and
two more under ``torch.profiler`` (self CPU time per operator). Run it once as is and once
with freed memory kept in glibc's heap, as ``poseshift train`` keeps it:

    cd benchmarks && OMP_WAIT_POLICY=PASSIVE ../.venv/bin/python stride32_step_breakdown.py
    GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647 \\
        OMP_WAIT_POLICY=PASSIVE ../.venv/bin/python stride32_step_breakdown.py
"""

from __future__ import annotations

import collections
import subprocess
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile
from train_compile_check import KEYPOINTS, random_batch_step

from poseshift.models.posenet import build_posenet


def run_steps(mode: str) -> None:
    """In a child process: warm up, then the verbose step (stdout) or the profiled ones."""
    torch.manual_seed(0)
    step = random_batch_step(
        build_posenet("resnet50", KEYPOINTS, init="scratch", backbone_stride=32)
    )

    for _ in range(3):
        step()
    if mode == "onednn":
        start = time.perf_counter()
        with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
            step()
        print(f"step_seconds,{time.perf_counter() - start}")
        return
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
        step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def onednn_summary() -> None:
    out = subprocess.run(
        [sys.executable, __file__, "--child", "onednn"], capture_output=True, text=True
    ).stdout
    totals: dict[tuple[str, str, str], float] = collections.defaultdict(float)
    step = 0.0
    for line in out.splitlines():
        fields = line.split(",")
        if line.startswith("step_seconds,"):
            step = float(fields[1])
        elif ",primitive,exec," in line:  # ...,exec,cpu,KIND,KERNEL,PROP,...,MILLISECONDS
            totals[(fields[5], fields[6], fields[7])] += float(fields[-1]) / 1000
    print(f"one step: {step:.2f} s, of which oneDNN primitives {sum(totals.values()):.2f} s")
    for (kind, kernel, prop), seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds:6.3f} s  {kind:14s} {prop:18s} {kernel}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        run_steps(sys.argv[2])
    else:
        onednn_summary()
        run_steps("profile")
