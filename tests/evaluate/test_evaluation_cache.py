"""Cached metrics are reused only for the same inputs: pcutoff, image files, plots, batch size."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from conftest import TINY, make_project, spec_for
from poseshift.data.project import load_project
from poseshift.data.splits import group_split, save_split
from poseshift.evaluate.adapted import ADAPTED_PARTITION, evaluate_adapted
from poseshift.evaluate.evaluate import evaluate_run
from poseshift.train.trainer import train

PAIR = ["Nose", "Eye"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A 2-iteration run (snapshots 1 and 2) on a project split into train and ood groups."""
    root = tmp_path_factory.mktemp("cache")
    make_project(root / "proj", groups=3, frames=2)
    save_split(root / "proj", group_split(load_project(root / "proj"), 2, 1, [0.5]))
    recipe = dataclasses.replace(TINY, iterations=2, snapshots=[1])
    spec = spec_for(root / "proj", split="horse10-g2-s0", fraction=0.5, train=recipe)
    train(spec, root / "run", show_progress=False)
    return root


@pytest.fixture
def run(trained: Path, tmp_path: Path) -> Path:
    """A copy of the run whose project is a copy too: the tests edit both."""
    shutil.copytree(trained / "proj", tmp_path / "proj")
    shutil.copytree(trained / "run", tmp_path / "run")
    spec = yaml.safe_load((tmp_path / "run" / "run.yaml").read_text())
    spec["project"] = str(tmp_path / "proj")
    (tmp_path / "run" / "run.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return tmp_path / "run"


def set_pcutoff(run: Path, value: float) -> None:
    config_path = run.parent / "proj" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["pcutoff"] = value
    config_path.write_text(yaml.safe_dump(config))


def test_a_new_pcutoff_is_applied_and_zero_keeps_every_keypoint(run: Path) -> None:
    [first] = evaluate_run(run, scale_pair=PAIR, device="cpu")
    assert first["partitions"]["train"]["pcutoff"] == 0.6
    set_pcutoff(run, 0)
    [zero] = evaluate_run(run, scale_pair=PAIR, device="cpu")  # not the 0.6 metrics again
    for part in zero["partitions"].values():
        assert part["pcutoff"] == 0.0 and part["kept_fraction_pcutoff"] == 1.0
        assert part["error_px_pcutoff"] == pytest.approx(part["error_px"])
    assert zero["source"]["pcutoff"] == 0.0
    assert zero["partitions"]["train"]["error_px"] == first["partitions"]["train"]["error_px"]


def test_frames_replaced_under_the_same_names_are_evaluated_again(run: Path) -> None:
    [before] = evaluate_run(run, scale_pair=PAIR, device="cpu")
    project = run.parent / "proj"
    stamp = os.stat(project / "config.yaml").st_mtime_ns + 10**9
    for png in project.glob("labeled-data/*/*.png"):  # frames extracted again, same names
        cv2.imwrite(str(png), np.full((32, 48, 3), 200, np.uint8))
        os.utime(png, ns=(stamp, stamp))
    [after] = evaluate_run(run, scale_pair=PAIR, device="cpu")
    [forced] = evaluate_run(run, scale_pair=PAIR, device="cpu", force=True)
    assert after["source"]["labels"] != before["source"]["labels"]
    assert after["partitions"] == forced["partitions"] != before["partitions"]


def test_plots_are_never_kept_beside_metrics_of_other_weights(run: Path) -> None:
    plots = run / "eval" / "snapshot-0000002" / "plots"
    evaluate_run(run, plot=1, scale_pair=PAIR, device="cpu")
    assert (plots / "train-00.png").is_file()
    snapshots = run / "snapshots"
    shutil.copy(snapshots / "snapshot-0000001.pt", snapshots / "snapshot-0000002.pt")  # retrained
    evaluate_run(run, plot=0, scale_pair=PAIR, device="cpu")  # new metrics, no plots asked
    assert not plots.exists(), "plots of the old weights were left behind"
    evaluate_run(run, plot=1, scale_pair=PAIR, device="cpu")
    again = cv2.imread(str(plots / "train-00.png"))
    evaluate_run(run, plot=1, scale_pair=PAIR, device="cpu", force=True)
    np.testing.assert_array_equal(again, cv2.imread(str(plots / "train-00.png")))


def test_adapted_metrics_follow_the_batch_size(run: Path) -> None:
    whole = evaluate_adapted(run, scale_pair=PAIR, batch_size=4, device="cpu")
    single = evaluate_adapted(run, scale_pair=PAIR, batch_size=1, device="cpu")
    assert (whole["source"]["batch_size"], single["source"]["batch_size"]) == (4, 1)
    fresh = evaluate_adapted(run, scale_pair=PAIR, batch_size=1, device="cpu", force=True)
    assert single["partitions"][ADAPTED_PARTITION] == fresh["partitions"][ADAPTED_PARTITION]
