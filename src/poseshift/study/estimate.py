"""How much compute a plan needs, from throughput measured on this machine."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import torch

from poseshift.spec import TrainConfig
from poseshift.study.plan import Plan, PlannedRun
from poseshift.train.trainer import typical_input_size

HORSE30_SIZE = (288, 162)  # (W, H) of most Horse-30 frames: a project that is not there yet


def plan_frame_size(plan: Plan) -> tuple[int, int]:
    """The largest (W, H) frame the plan's runs may train on: its project's, else that of the
    synthetic benchmark it generates, else Horse-30's."""
    if (Path(plan.project) / "config.yaml").is_file():
        from poseshift.data.project import load_project

        width, height = load_project(plan.project).image_sizes.max(axis=0)
        return int(width), int(height)
    return tuple(plan.synth.size) if plan.synth else HORSE30_SIZE  # type: ignore[return-value]


def seconds_per_iteration(
    backbone: str,
    config: TrainConfig,
    device: torch.device,
    frame_size: tuple[int, int] = HORSE30_SIZE,
    num_keypoints: int = 22,
    steps: int = 2,
) -> float:
    """Time of forward + backward + SGD step after one warm-up step, on random data."""
    from poseshift.models.posenet import build_posenet

    model = build_posenet(
        backbone, num_keypoints, init="scratch", backbone_stride=config.backbone_stride
    )
    model = model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    width, height = typical_input_size(config, frame_size)
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


def estimate(
    runs: list[PlannedRun],
    device: torch.device,
    measure: bool = True,
    frame_size: tuple[int, int] = HORSE30_SIZE,
) -> list[dict]:
    """Per backbone x preset: runs, iterations, measured s/iteration and total hours, on
    crops made as training makes them from frames of ``frame_size`` (``plan_frame_size``)."""
    groups: dict[tuple[str, str], list[PlannedRun]] = defaultdict(list)
    for run in runs:
        groups[(run.spec.backbone, run.spec.preset)].append(run)
    rows = []
    for (backbone, preset), members in groups.items():
        config = members[0].spec.train
        iterations = sum(r.spec.train.iterations for r in members)
        per_iteration = (
            seconds_per_iteration(backbone, config, device, frame_size) if measure else None
        )
        rows.append(
            {
                "backbone": backbone,
                "preset": preset,
                "runs": len(members),
                "iterations": iterations,
                "batch": config.batch_size,
                "input": "x".join(map(str, typical_input_size(config, frame_size))),
                "s_per_iteration": per_iteration,
                "hours": per_iteration * iterations / 3600 if per_iteration else None,
            }
        )
    return rows
