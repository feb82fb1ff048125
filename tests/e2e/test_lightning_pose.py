"""A Lightning Pose user's path: their example data folder becomes a project that trains,
evaluates and analyzes its own video, with the poses handed back as SLEAP and NWB files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import sleap_io
from pynwb import NWBHDF5IO
from typer.testing import CliRunner

from conftest import write_clip
from poseshift.cli import app

runner = CliRunner()


def test_lightning_pose_import_train_evaluate_analyze(lightning_pose: Path, tmp_path: Path) -> None:
    project, run = tmp_path / "mirror-mouse", tmp_path / "run"
    result = runner.invoke(app, ["data", "import", str(lightning_pose), str(project)])
    assert result.exit_code == 0, result.output
    assert "90 frames, 17 bodyparts" in " ".join(result.output.split())
    args = ["train", str(project), "--backbone", "mobilenetv2_035", "--init", "scratch",
            "--preset", "fast", "--iters", "2", "--batch-size", "2", "--crop", "128x128",
            "--workers", "0", "--out", str(run)]  # fmt: skip
    trained = runner.invoke(app, args)
    assert trained.exit_code == 0, trained.output
    evaluated = runner.invoke(app, ["evaluate", str(run), "--scale-pair", "nose_top,tailBase_top"])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads((run / "eval" / "snapshot-0000002" / "metrics.json").read_text())
    parts = metrics["partitions"]
    assert parts["train"]["n_images"] + parts["within"]["n_images"] == 90
    assert parts["within"]["error_px"] is not None

    video = write_clip(lightning_pose / "videos" / "test_vid.mp4", tmp_path / "test_vid.mp4", 8)
    analyzed = runner.invoke(app, ["analyze", str(run), str(video), "--export", "slp,nwb"])
    assert analyzed.exit_code == 0, analyzed.output
    [h5] = tmp_path.glob("test_vid*.h5")
    table = pd.read_hdf(h5)
    poses = table.to_numpy().reshape(len(table), 17, 3)
    assert len(table) == 8

    slp = sleap_io.load_file(str(h5.with_suffix(".predictions.slp")))
    assert slp.skeleton.node_names == list(table.columns.get_level_values("bodyparts").unique())
    assert [lf.frame_idx for lf in slp.labeled_frames] == list(range(8))
    for lf in slp.labeled_frames:
        [instance] = lf.predicted_instances
        np.testing.assert_allclose(instance.numpy(scores=True), poses[lf.frame_idx], atol=1e-4)

    nwb_path = h5.with_suffix(".nwb")
    from_sleap_io = sleap_io.load_file(str(nwb_path))
    np.testing.assert_allclose(
        from_sleap_io.labeled_frames[3].predicted_instances[0].numpy(), poses[3, :, :2], atol=1e-4
    )
    with NWBHDF5IO(str(nwb_path), "r", load_namespaces=True) as io:
        nwb = io.read()
        [module] = [m for name, m in nwb.processing.items() if name != "behavior"]
        estimation = module["PoseEstimation"]
        assert estimation.scorer == h5.stem.removeprefix("test_vid")  # the model's name
        assert estimation.source_software == "poseshift"
        nose = estimation.pose_estimation_series["nose_top"]
        np.testing.assert_allclose(nose.timestamps[:], np.arange(8) / 250.0)  # 250 fps video
        k = slp.skeleton.node_names.index("nose_top")
        np.testing.assert_allclose(nose.confidence[:], poses[:, k, 2], atol=1e-6)
        np.testing.assert_allclose(nose.data[:], poses[:, k, :2], atol=1e-4)
