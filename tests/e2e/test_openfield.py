"""The real-user path on the shared DeepLabCut project, from the command line:
split -> train -> evaluate, with DeepLabCut-style predictions at the end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from poseshift.cli import app

runner = CliRunner()


def test_openfield_split_train_evaluate(openfield: Path, tmp_path: Path) -> None:
    project = tmp_path / "openfield"
    shutil.copytree(openfield, project)
    split = runner.invoke(
        app, ["split", str(project), "--scheme", "random", "--shuffles", "1", "--fractions", "0.95"]
    )
    assert split.exit_code == 0, split.output
    run = tmp_path / "run"
    args = [
        "train",
        str(project),
        "--split",
        "random-s0",
        "--backbone",
        "mobilenetv2_035",
        "--init",
        "scratch",
        "--preset",
        "fast",
        "--iters",
        "3",
        "--batch-size",
        "2",
        "--crop",
        "128x128",
        "--workers",
        "0",
        "--out",
        str(run),
    ]
    trained = runner.invoke(app, args)
    assert trained.exit_code == 0, trained.output
    assert "finished 3 iterations" in " ".join(trained.output.split())
    again = runner.invoke(app, args)
    assert "already finished" in " ".join(again.output.split())

    evaluated = runner.invoke(app, ["evaluate", str(run), "--scale-pair", "snout,tailbase"])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads((run / "eval" / "snapshot-0000003" / "metrics.json").read_text())
    assert metrics["partitions"]["train"]["n_images"] == 110
    assert metrics["partitions"]["within"]["n_images"] == 6
    assert metrics["partitions"]["ood"]["error_px"] is None  # one video: nothing out of domain
    predictions = pd.read_hdf(run / "eval" / "snapshot-0000003" / "predictions.h5")
    assert predictions.shape == (116, 12)
    assert predictions.index[0] == "labeled-data/m4s1/img0000.png"
    assert predictions.columns.names == ["scorer", "bodyparts", "coords"]

    # Hand check on a few test images: Euclidean distance to the labels in the .h5 file,
    # averaged, equals the test error evaluate reports.
    labels = pd.read_hdf(project / "labeled-data" / "m4s1" / "CollectedData_Pranav.h5")
    within = json.loads((run / "split.json").read_text())["within"]
    distances = []
    for image in within:
        for part in ("snout", "leftear", "rightear", "tailbase"):
            row = predictions.loc[image]
            px, py = (row[(row.index[0][0], part, c)] for c in "xy")
            lx, ly = (labels.loc[image, ("Pranav", part, c)] for c in "xy")
            distances.append(((px - lx) ** 2 + (py - ly) ** 2) ** 0.5)
    expected = sum(distances) / len(distances)
    assert metrics["partitions"]["within"]["error_px"] == pytest.approx(expected, rel=1e-4)
