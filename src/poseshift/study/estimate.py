"""How much compute a plan needs, from throughput measured on this machine."""

from __future__ import annotations

import math
import time
from collections import defaultdict

import torch

from poseshift.spec import TrainConfig
from poseshift.study.plan import PlannedRun

HORSE30_SIZE = (288, 162)  # (W, H) of most Horse-30 frames; used when a plan has no crop


def input_size(config: TrainConfig) -> tuple[int, int]:
    if config.augment.crop:
        return tuple(config.augment.crop)  # type: ignore[return-value]
    w, h = (v * config.augment.global_scale for v in HORSE30_SIZE)
    return math.ceil(w / 16) * 16, math.ceil(h / 16) * 16


def seconds_per_iteration(
    backbone: str,
    config: TrainConfig,
    device: torch.device,
    num_keypoints: int = 22,
    steps: int = 2,
) -> float:
    """Time of forward + backward + SGD step after one warm-up step, on random data."""
    from poseshift.models.posenet import build_posenet

    model = build_posenet(backbone, num_keypoints, init="scratch").to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    width, height = input_size(config)
    images = torch.randn(config.batch_size, 3, height, width, device=device)
    timings = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        out = model(images)
        (out["scoremaps"].mean() + out["locref"].mean()).backward()
        optimizer.step()
        optimizer.zero_grad()
        if device.type == "cuda":
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - start)
    return min(timings[1:])


def estimate(runs: list[PlannedRun], device: torch.device, measure: bool = True) -> list[dict]:
    """Per backbone x preset: runs, iterations, measured s/iteration and total hours."""
    groups: dict[tuple[str, str], list[PlannedRun]] = defaultdict(list)
    for run in runs:
        groups[(run.spec.backbone, run.spec.preset)].append(run)
    rows = []
    for (backbone, preset), members in groups.items():
        config = members[0].spec.train
        iterations = sum(r.spec.train.iterations for r in members)
        per_iteration = seconds_per_iteration(backbone, config, device) if measure else None
        rows.append(
            {
                "backbone": backbone,
                "preset": preset,
                "runs": len(members),
                "iterations": iterations,
                "batch": config.batch_size,
                "input": "x".join(map(str, input_size(config))),
                "s_per_iteration": per_iteration,
                "hours": per_iteration * iterations / 3600 if per_iteration else None,
            }
        )
    return rows
