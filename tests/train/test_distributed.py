"""Data-parallel training on the CPU (gloo): two processes train the run one process trains.

These runs use ResNet-50 from scratch: its zero-initialized residual branches keep the first
steps well conditioned, so fp32 runs agree to ~1e-6. MobileNetV2 from scratch on noise images
amplifies rounding so much that one vs two CPU threads already differ by 1 % after three
steps; no fp32 comparison could pass there, with or without DDP.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import TINY, make_project, spec_for
from poseshift.data.loader import RangeSampler
from poseshift.errors import PoseshiftError
from poseshift.evaluate.evaluate import evaluate_run
from poseshift.models.posenet import load_posenet
from poseshift.run import RunDir
from poseshift.spec import RunSpec, resolve_settings
from poseshift.study.plan import load_plan
from poseshift.study.runner import run_study
from poseshift.train.distributed import FAULT_ENV
from poseshift.train.trainer import train

# A small LR: at 0.02 a from-scratch ResNet-50 amplifies float noise (the summation order of
# 1 vs 2 processes) tens of times per step, which says nothing about data-parallel training.
RECIPE = dataclasses.replace(
    TINY,
    iterations=4,
    snapshots=[2, 3],
    lr_steps={"imagenet": [[0.002, 10]], "scratch": [[0.002, 10]]},
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One thread in this process, as each rank has: shared CPUs are slow to oversubscribe."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunSpec, Path]:
    """The spec and the run dir of the one-process run the two-process runs must match."""
    root = tmp_path_factory.mktemp("ddp")
    make_project(root / "proj")
    spec = spec_for(root / "proj", backbone="resnet50", train=RECIPE, checkpoint_every=2)
    train(spec, root / "one", show_progress=False)
    return spec, root / "one"


def on_devices(spec: RunSpec, devices: int) -> RunSpec:
    return dataclasses.replace(spec, execution=dataclasses.replace(spec.execution, devices=devices))


def log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def assert_same_losses(run_dir: Path, reference: Path) -> None:
    got, want = log(run_dir), log(reference)[: len(log(run_dir))]
    for key in ("iteration", "lr", "total", "scoremap", "locref"):
        assert [r[key] for r in got] == pytest.approx([r[key] for r in want], rel=1e-5), key


def assert_same_weights(got: dict, want: dict, tolerance: float = 1e-5) -> None:
    """Same weights and the same BatchNorm statistics."""
    assert got.keys() == want.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=10 * tolerance, atol=tolerance)


def checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)


def scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    board = EventAccumulator(str(run_dir / "tensorboard"))
    board.Reload()
    return [(e.step, e.value) for e in board.Scalars(tag)]


def test_ranks_split_every_global_batch() -> None:
    one = list(RangeSampler(2, 4, batch_size=4))
    halves = [list(RangeSampler(2, 4, batch_size=4, rank=r, world=2)) for r in (0, 1)]
    assert one == [8, 9, 10, 11, 12, 13, 14, 15]
    assert halves == [[8, 9, 12, 13], [10, 11, 14, 15]]


def test_a_dead_rank_stops_the_run_which_resumes_exactly(
    reference: tuple[RunSpec, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, one = reference
    run = tmp_path / "two"
    monkeypatch.setenv(FAULT_ENV, "1:3:exit")  # rank 1 dies after 3 steps; checkpoint at 2
    with pytest.raises(
        PoseshiftError,
        match=r"rank 1 of 2 exited \(17\).*resumes from the checkpoint at iteration 2$",
    ):
        train(on_devices(spec, 2), run, show_progress=False)
    assert not (run / "done.json").exists() and RunDir(run).spec().execution.devices == 2
    # the model after 2 steps on 2 processes is the model after 2 steps on one
    assert checkpoint(run)["iteration"] == 2
    assert_same_weights(
        checkpoint(run)["model"], load_posenet(RunDir(one).snapshot_path(2)).state_dict()
    )
    assert_same_losses(run, one)

    monkeypatch.delenv(FAULT_ENV)
    finished = train(spec, run, show_progress=False)  # on one process: a run trains the same
    assert finished.finished and finished.iteration == 4 and RunDir(run).snapshots() == [2, 3, 4]
    assert_same_losses(run, one)
    assert_same_weights(checkpoint(run)["model"], checkpoint(one)["model"])
    steps = [step for step, _ in scalars(run, "loss/total")]
    assert steps == [1, 2, 3, 4]  # TensorBoard forgot the point redone after the resume


def test_ctrl_c_on_one_rank_stops_all_after_the_same_step(
    reference: tuple[RunSpec, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, one = reference
    run, seen = tmp_path / "two", []

    def stop_at_1(iteration: int, _losses: dict) -> None:
        if iteration == 1:
            raise KeyboardInterrupt

    assert not train(spec, run, on_iteration=stop_at_1, show_progress=False).finished
    monkeypatch.setenv(FAULT_ENV, "1:2:interrupt")  # SIGINT reaches rank 1 before step 3
    stopped = train(
        on_devices(spec, 2),  # resumes from the checkpoint rank 0 broadcasts
        run,
        on_iteration=lambda it, _losses: seen.append(it),
        show_progress=False,
    )
    assert not stopped.finished and stopped.iteration == 3 and seen == [2, 3]
    assert checkpoint(run)["iteration"] == 3
    assert_same_losses(run, one)
    weights_at_3 = load_posenet(RunDir(one).snapshot_path(3)).state_dict()
    assert_same_weights(checkpoint(run)["model"], weights_at_3)
    monkeypatch.delenv(FAULT_ENV)
    assert train(spec, run, show_progress=False).finished
    # One more step from the 1e-5 float differences of two processes: BatchNorm over a batch
    # of two 48x32 images (3x2 cells in the last stage) amplifies them ~10x.
    assert_same_weights(checkpoint(run)["model"], checkpoint(one)["model"], tolerance=1e-3)


def test_batch_one_refuses_several_devices(tiny_project: Path, tmp_path: Path) -> None:
    paper, _ = resolve_settings("paper", {"iterations": 1})
    spec = spec_for(tiny_project, train=paper, preset="paper", devices=2)
    with pytest.raises(PoseshiftError, match=r"preset 'paper' trains with batch size 1"):
        train(spec, tmp_path / "run", show_progress=False)
    assert not (tmp_path / "run").exists()


def test_a_study_gives_each_run_its_gpus_as_devices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(tmp_path / "proj", groups=4, frames=3)
    plan = {
        "name": "gpus",
        "project": str(tmp_path / "proj"),
        "split": {"name": "gpus-split", "train_groups": 2, "shuffles": 1, "fractions": [0.5]},
        "grid": {"backbones": ["mobilenetv2_035"], "inits": ["scratch"], "preset": "fast"},
    }
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    asked = []

    def fake_train(spec: RunSpec, *_args, **_kwargs):
        asked.append(spec.execution.devices)
        raise PoseshiftError("stop here")

    monkeypatch.setattr("poseshift.train.trainer.train", fake_train)
    result = run_study(
        load_plan(tmp_path / "plan.yaml"), tmp_path / "study", gpus_per_run=2, show_progress=False
    )
    assert asked == [2] and len(result.failed) == 1


def test_tensorboard_has_training_and_evaluation_curves(reference: tuple[RunSpec, Path]) -> None:
    _, one = reference
    records = log(one)
    for tag, key in (("loss/total", "total"), ("loss/locref", "locref"), ("train/lr", "lr")):
        assert scalars(one, tag) == [
            (r["iteration"], pytest.approx(r[key], rel=1e-6)) for r in records
        ]
    assert [step for step, _ in scalars(one, "train/images_per_s")] == [1, 2, 3, 4]
    [metrics] = evaluate_run(one, snapshots="last", scale_pair=["Nose", "Eye"], device="cpu")
    for partition, values in metrics["partitions"].items():
        for name in ("error_px", "normalized_error", "pck"):
            if values[name] is not None:
                assert scalars(one, f"eval/{partition}/{name}") == [
                    (4, pytest.approx(values[name], rel=1e-6, nan_ok=True))
                ]


def test_frozen_batchnorm_stays_frozen_on_several_processes(
    tiny_project: Path, tmp_path: Path
) -> None:
    recipe = dataclasses.replace(TINY, iterations=2, snapshots=[2], batchnorm={"resnet": "frozen"})
    spec = spec_for(tiny_project, backbone="resnet50", train=recipe, devices=2)
    assert train(spec, tmp_path / "run", show_progress=False).finished
    state = torch.load(RunDir(tmp_path / "run").snapshot_path(2), weights_only=True)["state_dict"]
    means = [v for k, v in state.items() if k.endswith("running_mean")]
    assert means and all(torch.count_nonzero(m) == 0 for m in means)  # scratch: still 0


@pytest.mark.xfail(
    strict=True,
    reason="fp32 chaos, not DDP: after one step the weights differ by an ulp (batch-2 vs "
    "per-rank gradient sums), which flips a few ReLU6 units of the from-scratch MobileNetV2 "
    "and moves the step-2 gradient by 6 % (so in float64 too); ResNet-50 matches.",
)
def test_per_image_batchnorm_trains_the_same_on_two_processes(
    tiny_project: Path, tmp_path: Path
) -> None:
    recipe = dataclasses.replace(
        RECIPE, iterations=2, snapshots=[2], batchnorm={"mobilenetv2": "per_image"}
    )
    for devices in (1, 2):
        spec = spec_for(tiny_project, train=recipe, devices=devices)
        assert train(spec, tmp_path / f"run{devices}", show_progress=False).finished
    assert_same_losses(tmp_path / "run2", tmp_path / "run1")
    assert_same_weights(
        checkpoint(tmp_path / "run2")["model"], checkpoint(tmp_path / "run1")["model"]
    )


def test_per_image_canvas_trains_the_same_on_two_processes(
    tiny_project: Path, tmp_path: Path
) -> None:
    """``canvas: per_image`` samples differ in size: each rank's slice is padded to the whole
    batch's largest image, as one process pads the batch, not just to its own slice's."""
    augment = dataclasses.replace(RECIPE.augment, crop=None, canvas="per_image")
    recipe = dataclasses.replace(RECIPE, iterations=2, snapshots=[2], augment=augment)
    for devices in (1, 2):
        spec = spec_for(tiny_project, backbone="resnet50", train=recipe, devices=devices)
        assert train(spec, tmp_path / f"run{devices}", show_progress=False).finished
    assert_same_losses(tmp_path / "run2", tmp_path / "run1")
    assert_same_weights(
        checkpoint(tmp_path / "run2")["model"], checkpoint(tmp_path / "run1")["model"]
    )
