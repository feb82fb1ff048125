"""``evaluate_run`` on a tiny trained run: schema, a hand check of predictions, bad input."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from conftest import TINY, make_project, spec_for
from poseshift.cli import app
from poseshift.data.project import load_project
from poseshift.errors import PoseshiftError
from poseshift.evaluate.evaluate import evaluate_run
from poseshift.models.posenet import load_posenet
from poseshift.run import RunDir
from poseshift.train.trainer import train

KEYS = {"n_images", "error_px", "normalized_error", "pck", "pck_threshold", "per_bodypart"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eval")
    make_project(root / "proj", groups=3, frames=4)
    from poseshift.data.splits import group_split, save_split

    save_split(root / "proj", group_split(load_project(root / "proj"), 2, 1, [0.5]))
    train(
        spec_for(root / "proj", split="horse10-g2-s0", fraction=0.5),
        root / "run",
        show_progress=False,
    )
    return root / "run"


def test_metrics_json_schema_and_hand_check(trained: Path) -> None:
    [metrics] = evaluate_run(trained, snapshots="last", plot=1, scale_pair=["Nose", "Eye"])
    out = trained / "eval" / "snapshot-0000006"
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert metrics["snapshot"] == 6
    parts = metrics["partitions"]
    assert set(parts) == {"train", "within", "ood"}
    assert parts["ood"]["n_images"] == 4 and parts["train"]["n_images"] == 4
    for part in parts.values():
        assert set(part) >= KEYS
        assert part["pck_threshold"] == 0.3
        assert set(part["per_bodypart"]) == {"Nose", "Eye", "Tail"}
    assert (out / "plots" / "ood-00.png").is_file()

    # Hand check: run the snapshot on one OOD image ourselves and decode by argmax + locref.
    dataset = load_project(yaml.safe_load((trained / "run.yaml").read_text())["project"])
    predictions = pd.read_hdf(out / "predictions.h5")
    assert list(predictions.columns.get_level_values("coords")[:3]) == ["x", "y", "likelihood"]
    # The labels' own 3-level row index, in label order (DeepLabCut's evaluation joins on it).
    labels = [
        pd.read_hdf(f"{dataset.root}/labeled-data/video{g}/CollectedData_tester.h5")
        for g in range(3)
    ]
    assert predictions.index.equals(pd.concat(labels).index)
    config = yaml.safe_load((dataset.root / "config.yaml").read_text())
    scorer = f"DLC_mobnet_35_tiny{config['date']}shuffle1_6"  # as DeepLabCut names the network
    assert predictions.columns.levels[0].tolist() == [scorer]
    predictions.index = ["/".join(row) for row in predictions.index]
    model = load_posenet(RunDir(trained).snapshot_path(6)).eval()
    name = json.loads((trained / "split.json").read_text())["ood"][0]
    i = dataset.images.index(name)
    import cv2

    image = dataset.load_image(i)
    small = np.zeros((32, 48, 3), np.uint8)  # black to a multiple of 16, as in training
    small[:26, :38] = cv2.resize(image, (38, 26), interpolation=cv2.INTER_AREA)  # 0.8 x 48x32
    with torch.no_grad():
        out_maps = model(model.normalize(torch.from_numpy(small).permute(2, 0, 1)[None]))
    scores, locref = out_maps["scoremaps"][0], out_maps["locref"][0]
    w = scores.shape[-1]
    fx, fy = 48 / 38, 32 / 26  # the resize factor (the padding is below and right)
    for k in range(3):
        r, c = divmod(int(scores[k].argmax()), w)
        # Back through cv2.resize's pixel centres: input i is original (i + 0.5) * f - 0.5.
        x = (c * 8 + 4 + float(locref[2 * k, r, c]) * 7.2801 + 0.5) * fx - 0.5
        y = (r * 8 + 4 + float(locref[2 * k + 1, r, c]) * 7.2801 + 0.5) * fy - 0.5
        row = predictions.loc[name]
        part = dataset.bodyparts[k]
        assert row[(row.index[0][0], part, "x")] == pytest.approx(x, abs=1e-3)
        assert row[(row.index[0][0], part, "y")] == pytest.approx(y, abs=1e-3)
    # And the partition's mean error is the mean of the per-keypoint distances.
    ood = json.loads((trained / "split.json").read_text())["ood"]
    xy = predictions.loc[ood].to_numpy().reshape(len(ood), 3, 3)[..., :2]
    truth = dataset.keypoints[dataset.indices_of(ood)]
    expected = np.linalg.norm(xy - truth, axis=-1).mean()
    assert parts["ood"]["error_px"] == pytest.approx(expected, rel=1e-5)


def test_labels_with_path_rows_get_path_rows(tmp_path: Path) -> None:
    """DeepLabCut 2.1's one-string row index stays one string."""
    make_project(tmp_path / "proj", groups=2, frames=2, index_style="path")
    dataset = load_project(tmp_path / "proj")
    assert dataset.index_style == "path"
    recipe = dataclasses.replace(TINY, iterations=2, snapshots=[])
    train(spec_for(tmp_path / "proj", train=recipe), tmp_path / "run", show_progress=False)
    evaluate_run(tmp_path / "run", scale_pair=["Nose", "Eye"])
    predictions = pd.read_hdf(tmp_path / "run/eval/snapshot-0000002/predictions.h5")
    assert predictions.index.tolist() == dataset.images


def test_evaluating_again_reuses_results(trained: Path) -> None:
    first = evaluate_run(trained, snapshots="all", scale_pair=["Nose", "Eye"])
    assert [m["snapshot"] for m in first] == [2, 4, 6]
    stamp = (trained / "eval" / "snapshot-0000002" / "metrics.json").stat().st_mtime_ns
    evaluate_run(trained, snapshots="all", scale_pair=["Nose", "Eye"])
    assert (trained / "eval" / "snapshot-0000002" / "metrics.json").stat().st_mtime_ns == stamp


def test_bad_input(trained: Path, tmp_path: Path) -> None:
    with pytest.raises(PoseshiftError, match="has no snapshot 5; available: \\[2, 4, 6\\]"):
        evaluate_run(trained, snapshots=5)
    empty = tmp_path / "empty"
    shutil.copytree(trained, empty, ignore=shutil.ignore_patterns("*.pt", "eval"))
    with pytest.raises(PoseshiftError, match="has no snapshots"):
        evaluate_run(empty, snapshots="last")
    with pytest.raises(PoseshiftError, match="not a poseshift run directory"):
        evaluate_run(tmp_path, snapshots="last")
    other = tmp_path / "other"
    shutil.copytree(trained, other)
    split = json.loads((other / "split.json").read_text())
    split["bodyparts"] = ["snout", "tail", "ear"]
    (other / "split.json").write_text(json.dumps(split))
    with pytest.raises(PoseshiftError, match="was trained on \\['snout', 'tail', 'ear'\\]"):
        evaluate_run(other, snapshots="last")
    (other / "split.json").unlink()  # a run killed before it wrote its membership
    with pytest.raises(PoseshiftError, match=r"has no split\.json; it is not a complete training"):
        evaluate_run(other, snapshots="last")


def test_cli_prints_the_table(trained: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", str(trained), "--scale-pair", "Nose,Eye"])
    assert result.exit_code == 0, result.output
    for text in ("train", "within", "ood", "PCK"):
        assert text in result.output
    assert TINY.iterations == 6


def test_cached_metrics_follow_the_scale_and_the_plots(trained: Path, tmp_path: Path) -> None:
    out = trained / "eval" / "snapshot-0000006"
    [eye] = evaluate_run(trained, snapshots="last", scale_pair=["Nose", "Eye"])
    [tail] = evaluate_run(trained, snapshots="last", scale_pair=["Nose", "Tail"])
    [fresh] = evaluate_run(trained, snapshots="last", scale_pair=["Nose", "Tail"], force=True)
    ood = [m["partitions"]["ood"]["normalized_error"] for m in (eye, tail, fresh)]
    assert ood[0] != ood[1] and ood[1] == ood[2]
    assert tail["source"]["scale_pair"] == ["Nose", "Tail"]

    images = load_project(yaml.safe_load((trained / "run.yaml").read_text())["project"]).images
    scale_file = tmp_path / "scale.h5"
    for scale in (10.0, 20.0):  # the same path, new contents
        pd.DataFrame({"scale": scale}, index=images).to_hdf(scale_file, key="df_with_missing")
        [metrics] = evaluate_run(trained, snapshots="last", scale_file=scale_file)
        error = metrics["partitions"]["ood"]["error_px"]
        assert metrics["partitions"]["ood"]["normalized_error"] == pytest.approx(error / scale)

    shutil.rmtree(out / "plots", ignore_errors=True)
    evaluate_run(trained, snapshots="last", plot=1, scale_pair=["Nose", "Eye"])
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "ood-00.png",
        "train-00.png",
        "within-00.png",
    ]
