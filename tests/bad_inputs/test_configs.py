"""Presets, plan overrides and CLI options: one loader, value checks, one line naming the key.

Also the other half of the recipe / execution split: a run resumes with another execution
(workers, logging) and records it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml
from refusals import cli_refuses, one_line_error

from conftest import spec_for
from poseshift.errors import PoseshiftError
from poseshift.spec import resolve_settings
from poseshift.study.plan import load_plan
from poseshift.train.trainer import train

BAD_VALUES = [  # overrides of the "fast" preset, and the message naming the key
    ({"iterations": 0}, "iterations must be at least 1, got 0"),
    ({"iterations": -1}, "iterations must be at least 1, got -1"),
    ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
    ({"lr": -5}, "lr must be positive, got -5.0"),
    ({"momentum": 1.5}, r"momentum must be in \[0, 1\), got 1.5"),
    ({"weight_decay": -1e-4}, "weight_decay must be 0 or more"),
    ({"iterations": 100, "warmup_iters": 100}, "warmup_iters must be 0 or more and shorter than"),
    ({"iterations": 100, "snapshots": [50, 200]}, r"snapshots must be iterations in 1..100"),
    ({"seed": -3}, "seed must be 0 or more"),
    ({"augment": {"scale_jitter": [1.2, 0.8]}}, "augment.scale_jitter must be"),
    ({"augment": {"global_scale": 0}}, "augment.global_scale must be positive"),
    ({"augment": {"rotation_p": 2}}, r"augment.rotation_p must be a probability in \[0, 1\]"),
    ({"augment": {"crop": [8, 8]}}, "augment.crop must be"),
    ({"augment": {"crop": []}}, r"augment.crop must be \[W, H\]"),
    ({"augment": {"crop": [64]}}, r"augment.crop must be \[W, H\]"),
    ({"augment": {"crop": [64, 48, 3]}}, r"augment.crop must be \[W, H\]"),
    ({"augment": {"canvas": "whole"}}, "augment.canvas: must be one of"),
    (
        {"augment": {"canvas": "per_image", "crop": [64, 48]}},
        r"augment.canvas must be fixed with a crop \[64, 48\]",
    ),
    ({"augment": {"symmetric_pairs": [["a", "b", "c"]]}}, "augment.symmetric_pairs must be"),
    ({"checkpoint_every": 0}, "checkpoint_every must be at least 1"),
    ({"log_every": 0}, "log_every must be at least 1"),
    ({"num_workers": -1}, "num_workers must be 0 or more"),
    ({"devices": 0}, "devices must be at least 1"),
    ({"batchsize": 4}, "unknown key 'batchsize'"),
    ({"iterations": "ten"}, "iterations: expected int, got 'ten'"),
    ({"augment": {"crop_sampling": "random"}}, "augment.crop_sampling: must be one of"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_VALUES)
def test_bad_values_are_refused_naming_the_key(overrides: dict, message: str) -> None:
    with pytest.raises(PoseshiftError, match=message) as exc:
        resolve_settings("fast", overrides, where="my options")
    assert one_line_error(exc).startswith("my options")


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ({"imagenet": [[0.01, 10]]}, r"lr_steps.scratch must be a list"),
        ({"imagenet": [[0.01, 10], [0.02, 5]], "scratch": [[0.01, 10]]}, r"imagenet\[1\]"),
        ({"imagenet": [[-0.01, 10]], "scratch": [[0.01, 10]]}, r"imagenet\[0\]"),
        ({"imagenet": [[0.01]], "scratch": [[0.01, 10]]}, r"imagenet\[0\]"),
        ({"imagenet": [[1, 2]], "scratch": [[1, 2]], "scrach": [[1, 2]]}, "keyed by imagenet"),
    ],
)
def test_malformed_lr_steps_are_refused(steps: dict, message: str) -> None:
    with pytest.raises(PoseshiftError, match=message):
        resolve_settings("paper", {"lr_steps": steps})


def test_a_shorter_run_keeps_the_presets_snapshots_and_warmup_share() -> None:
    fast, _ = resolve_settings("fast")
    short, _ = resolve_settings("fast", {"iterations": 100})
    assert short.snapshots == [s for s in fast.snapshots if s <= 100]
    assert short.warmup_iters == round(100 * fast.warmup_iters / fast.iterations)
    given, _ = resolve_settings("fast", {"iterations": 100, "warmup_iters": 7})
    assert given.warmup_iters == 7


def test_a_preset_file_with_a_bad_value_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("iterations: 10\nlr_schedule: cosine\nlr: -1\n")
    with pytest.raises(PoseshiftError, match=r"mine.yaml: lr must be positive, got -1.0"):
        resolve_settings(str(path))
    path.write_text("- iterations\n")
    with pytest.raises(PoseshiftError, match=r"mine.yaml: expected a mapping"):
        resolve_settings(str(path))


def test_plan_overrides_get_the_same_checks(tmp_path: Path) -> None:
    plan = {
        "name": "bad",
        "project": str(tmp_path / "proj"),
        "grid": {"backbones": ["mobilenetv2_035"], "preset": "fast", "overrides": {"lr": -5}},
        "split": {"fractions": [0.5]},
    }
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    with pytest.raises(PoseshiftError, match=r"plan.yaml: grid.overrides: lr must be positive"):
        load_plan(path)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--iters", "0"], "iterations must be at least 1, got 0"),
        (["--iters", "-1"], "iterations must be at least 1, got -1"),
        (["--batch-size", "0"], "batch_size must be at least 1, got 0"),
        (["--workers", "-2"], "num_workers must be 0 or more, got -2"),
    ],
)
def test_cli_options_are_checked_before_any_work(
    tiny_project: Path, tmp_path: Path, option: list[str], message: str
) -> None:
    run = tmp_path / "run"
    base = ["train", tiny_project, "--backbone", "mobilenetv2_035", "--out", run]
    line = cli_refuses([*base, "--init", "scratch", "--preset", "fast", *option], "train options")
    assert message in line
    assert not run.exists()


def test_a_run_resumes_with_another_execution_and_records_it(
    tiny_project: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    spec = spec_for(tiny_project)

    def stop_at_three(iteration: int, _losses: dict) -> None:
        if iteration == 3:
            raise KeyboardInterrupt

    assert not train(spec, run, on_iteration=stop_at_three, show_progress=False).finished
    other = dataclasses.replace(
        spec, execution=dataclasses.replace(spec.execution, num_workers=1, log_every=2)
    )
    assert train(other, run, show_progress=False).finished  # not refused: same recipe
    record = json.loads((run / "environment.json").read_text())
    assert record["execution"]["num_workers"] == 0
    [resumed] = record["resumed"]
    assert resumed["at_iteration"] == 3 and resumed["execution"]["num_workers"] == 1
    assert train(spec, run, show_progress=False).skipped  # finished: any execution reuses it
