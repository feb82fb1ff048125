"""The synthetic benchmark is learnable and shows a real out-of-domain gap (slow: 90 s on two
quiet cores, measured 2026-11-25; run with `pytest -m slow`).

Measured with the standalone script (benchmarks/synth_domain_gap.md, MobileNetV2-0.35 from
scratch, 600 iterations, 160x96): within 5.16 px vs out of domain 11.87 px at shift 1, and
7.12 vs 7.16 px at shift 0. This test checks the same effect through the product's own
pipeline (generate -> split -> train -> evaluate).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from poseshift.data.project import load_project
from poseshift.data.splits import group_split, save_split
from poseshift.datasets.synthetic.generate import generate
from poseshift.evaluate.evaluate import evaluate_run
from poseshift.spec import Execution, RunSpec, resolve_settings
from poseshift.train.trainer import train


def ood_over_within(root: Path, shift: float) -> float:
    project = root / f"synth-{shift:g}"
    generate(
        project,
        individuals=30,
        frames_per_individual=20,
        size=(160, 96),
        seed=0,
        domain_shift=shift,
    )
    save_split(project, group_split(load_project(project), 10, 1, [0.5], name="g10"))
    config = resolve_settings("fast")[0]
    config = dataclasses.replace(
        config,
        iterations=600,
        batch_size=8,
        snapshots=[600],
        augment=dataclasses.replace(config.augment, global_scale=1.0, crop=(160, 96)),
    )
    spec = RunSpec(
        project=str(project),
        backbone="mobilenetv2_035",
        split="g10",
        fraction=0.5,
        init="scratch",
        preset="fast",
        train=config,
        execution=Execution(num_workers=0),
    )
    train(spec, root / f"run-{shift:g}", show_progress=False)
    [metrics] = evaluate_run(root / f"run-{shift:g}", snapshots="last")
    parts = metrics["partitions"]
    return parts["ood"]["normalized_error"] / parts["within"]["normalized_error"]


@pytest.mark.slow
def test_out_of_domain_gap_appears_with_domain_shift(tmp_path: Path) -> None:
    with_shift = ood_over_within(tmp_path, 1.0)
    without_shift = ood_over_within(tmp_path, 0.0)
    assert with_shift > 1.3
    assert without_shift < with_shift
