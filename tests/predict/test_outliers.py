"""Reliability scores next to the analysis, and ``outliers`` extracting frames as DeepLabCut."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from tiny_video import read_frames, tiny_run, write_video
from typer.testing import CliRunner

from poseshift.cli import app
from poseshift.data.project import load_project
from poseshift.errors import PoseshiftError
from poseshift.predict.outliers import extract_outliers, image_name, pick_frames
from poseshift.predict.reliability import jumps, reliability_path, reliability_table
from poseshift.run import RunDir


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory)


@pytest.fixture
def project_run(run: Path, tmp_path: Path) -> Path:
    """A copy of the tiny run whose project is a writable copy (outliers writes into it)."""
    project = tmp_path / "project"
    shutil.copytree(RunDir(run).spec().project, project)
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    spec = yaml.safe_load((copy / "run.yaml").read_text())
    spec["project"] = str(project)
    (copy / "run.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return copy


def test_jump_and_rescale_signals_find_the_bad_frame() -> None:
    """A keypoint that leaves its smooth track in one frame tops every signal there."""
    n, k = 9, 3
    xy = np.stack([np.linspace(0, 16, n)] * 2, axis=-1)[:, None, :].repeat(k, axis=1)
    poses = np.concatenate([xy, np.full((n, k, 1), 0.9)], axis=-1)
    rescaled = poses.copy()
    poses[4, :, :2] += 30  # frame 4 is wrong...
    poses[4, :, 2] = 0.2  # ... unsure ...
    rescaled[4, :, :2] += 5  # ... and moves at the other scale
    table = reliability_table(poses, rescaled)
    assert list(table.index) == list(range(n)) and table.index.name == "frame"
    assert int(table["unreliability"].idxmax()) == 4
    assert table.loc[4, "rescale_px"] == pytest.approx(np.hypot(30 - 5, 30 - 5))
    np.testing.assert_allclose(jumps(xy)[1:-1], 0, atol=1e-9)  # steady motion is no jump


def test_picks_are_the_worst_frames_spread_apart() -> None:
    score = np.array([0.1, 0.9, 0.95, 0.2, 0.8, 0.3])
    assert pick_frames(score, 2) == [2, 1]
    assert pick_frames(score, 2, min_gap=2) == [2, 4]
    assert image_name(7, 2330) == "img0007.png" and image_name(7, 10) == "img7.png"


def test_outliers_extract_frames_the_way_deeplabcut_does(project_run: Path, tmp_path: Path) -> None:
    (tmp_path / "videos").mkdir()
    video = write_video(tmp_path / "videos" / "m3.mp4", frames=12)
    project = Path(RunDir(project_run).spec().project)
    config_before = (project / "config.yaml").read_text()
    result = extract_outliers(project_run, video, n=4, compile=False)
    folder = project / "labeled-data" / "m3"
    assert result.folder == folder and len(result.frames) == 4
    frames = read_frames(video)
    for frame, image in zip(result.frames, result.images, strict=True):
        assert image == folder / f"img{frame:02d}.png"  # 12 frames: DeepLabCut's 2 digits
        stored = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(stored, frames[frame])  # the exact frame, lossless
    machine = pd.read_hdf(folder / "machinelabels-iter0.h5", "df_with_missing")
    assert list(machine.index) == [("labeled-data", "m3", p.name) for p in result.images]
    assert machine.columns.names == ["scorer", "bodyparts", "coords"]
    assert list(machine.columns.get_level_values(2)[:3]) == ["x", "y", "likelihood"]
    h5 = next(video.parent.glob("m3*.h5"))
    analysis = pd.read_hdf(h5)  # DeepLabCut's key-less read still works: one key in the .h5
    np.testing.assert_array_equal(machine.to_numpy(), analysis.iloc[result.frames].to_numpy())
    scores = pd.read_csv(reliability_path(h5), index_col="frame")
    assert len(scores) == 12 and scores["unreliability"].between(0, 1).all()
    assert set(result.frames) <= set(scores["unreliability"].nlargest(8).index)
    config = yaml.safe_load((project / "config.yaml").read_text())
    assert config["video_sets"][str(video.resolve())] == {"crop": "0, 64, 0, 48"}
    assert config_before.splitlines()[0] in (project / "config.yaml").read_text()
    assert not list(folder.glob("CollectedData*")), "labels are the user's to make"
    load_project(project)  # the project still loads: machine labels are not labels

    again = extract_outliers(project_run, video, n=6, min_gap=1, compile=False)
    machine = pd.read_hdf(folder / "machinelabels-iter0.h5", "df_with_missing")
    assert len(machine) == len(set(result.frames) | set(again.frames))  # appended, no duplicates
    assert len(list(folder.glob("img*.png"))) == len(machine)


def test_another_snapshot_never_adds_a_second_scorer_to_the_machine_labels(
    project_run: Path, tmp_path: Path
) -> None:
    """One scorer per machinelabels file, never a second half-empty column block: guesses of
    another snapshot are refused before the video is analyzed, the file is left as it was."""
    video = write_video(tmp_path / "m4.mp4", frames=10)
    first = extract_outliers(project_run, video, n=3, snapshot=6, compile=False)
    machine = pd.read_hdf(first.machine_labels)
    assert machine.shape == (3, 9) and not machine.isna().any().any()
    stored = first.machine_labels.read_bytes()
    with pytest.raises(PoseshiftError) as excinfo:
        extract_outliers(project_run, video, n=3, snapshot=4, compile=False)
    message = str(excinfo.value)
    assert "\n" not in message and str(first.machine_labels) in message
    assert "shuffle1_6" in message and "shuffle1_4" in message
    assert first.machine_labels.read_bytes() == stored
    assert not list(tmp_path.glob("m4*shuffle1_4*")), "refused before the analysis"
    again = extract_outliers(project_run, video, n=4, snapshot=6, compile=False)
    assert pd.read_hdf(again.machine_labels).shape[1] == 9  # the same snapshot still appends


def test_outliers_cli_and_analyze_reliability(project_run: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "mouse.mp4", frames=10)
    result = CliRunner().invoke(app, ["outliers", str(project_run), str(video), "--n", "3"])
    assert result.exit_code == 0, result.output
    project = Path(RunDir(project_run).spec().project)
    assert len(list((project / "labeled-data" / "mouse").glob("img*.png"))) == 3
    out = tmp_path / "analysis"
    args = ["analyze", str(project_run), str(video), "--dest", str(out), "--reliability"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    [h5] = out.glob("*.h5")
    assert len(pd.read_csv(reliability_path(h5))) == 10
    result = CliRunner().invoke(app, ["outliers", str(project_run), str(video), "--n", "0"])
    assert result.exit_code == 2 and result.output.startswith("error: --n 0")


def test_analyze_adapt_uses_a_run_adapted_on_each_video(run: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "newmouse.mp4", frames=8)
    args = ["analyze", str(run), str(video), "--dest", str(tmp_path), "--adapt"]
    result = CliRunner().invoke(app, [*args, "--no-compile"])
    assert result.exit_code == 0, result.output
    [h5] = tmp_path.glob("newmouse*.h5")
    [adapted] = (run / "adapted").glob("newmouse-*")
    tag = RunDir(adapted).adaptation_tag()
    assert h5.parent == tmp_path and h5.name.startswith("newmouseDLC_mobnet_35_")
    assert h5.name.endswith(f"{tag}shuffle1_6.h5")
    record = RunDir(adapted).adaptation()
    assert record["frames"]["video"]["path"] == str(video.resolve())
    stamp = (adapted / "adaptation.json").stat().st_mtime_ns
    result = CliRunner().invoke(app, [*args, "--no-compile"])
    assert result.exit_code == 0 and (adapted / "adaptation.json").stat().st_mtime_ns == stamp
