"""The real-user path on the shared DeepLabCut project, from the command line:
split -> train -> evaluate, with DeepLabCut-style predictions at the end."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from poseshift.cli import app
from poseshift.config import to_dict
from poseshift.spec import resolve_settings

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
    adapt_and_pick_outliers(project, run, tmp_path)


def adapt_and_pick_outliers(project: Path, run: Path, tmp_path: Path) -> None:
    """The new-animal path on real files: adapt on the project's frames, then extract the
    adapted run's outlier frames of (a clip of) the real video for labeling."""
    from poseshift.demo import cut_clip

    adapted = tmp_path / "run-adapted"
    args = ["adapt", str(run), str(project), "--out", str(adapted), "--max-frames", "12"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    record = json.loads((adapted / "adaptation.json").read_text())
    assert record["frames"]["kind"] == "project" and len(record["frames"]["images"]) == 12

    clip = cut_clip(project / "videos" / "m3v1mp4.mp4", tmp_path / "clip" / "m3v1.mp4", 16)
    result = runner.invoke(app, ["outliers", str(adapted), str(clip), "--n", "3", "--no-compile"])
    assert result.exit_code == 0, result.output
    folder = project / "labeled-data" / "m3v1"
    images = sorted(folder.glob("img*.png"))
    assert len(images) == 3 and all(len(p.stem) == len("img00") for p in images)  # 16 frames
    machine = pd.read_hdf(folder / "machinelabels-iter0.h5", "df_with_missing")
    assert sorted(name for *_, name in machine.index) == [p.name for p in images]
    assert list(machine.columns.get_level_values(1).unique()) == [
        "snout",
        "leftear",
        "rightear",
        "tailbase",
    ]
    config = yaml.safe_load((project / "config.yaml").read_text())
    assert str(clip.resolve()) in config["video_sets"]


def test_ctrl_c_then_the_same_command_gives_the_uninterrupted_run(
    openfield: Path, tmp_path: Path
) -> None:
    """The newcomer's check: train from the CLI, press Ctrl-C, run the same command again."""
    project = tmp_path / "openfield"
    shutil.copytree(openfield, project)
    preset = to_dict(resolve_settings("fast")[0])
    preset.update(iterations=10, log_every=1, checkpoint_every=1000, snapshots=[], warmup_iters=2)
    (tmp_path / "preset.yaml").write_text(yaml.safe_dump(preset))
    args = [
        "train",
        str(project),
        "--backbone",
        "mobilenetv2_035",
        "--init",
        "scratch",
        "--preset",
        str(tmp_path / "preset.yaml"),
        "--batch-size",
        "2",
        "--crop",
        "96x96",
        "--workers",
        "0",
    ]

    # Three processes, as a user runs them (one process vs another gives bit-equal steps;
    # this test process pins one torch thread, which would not).
    def poseshift(out: Path) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "poseshift", *args, "--out", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # A terminal's Ctrl-C: SIGINT handled as usual (a background shell ignores it).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    full = poseshift(tmp_path / "full")
    part = tmp_path / "part"
    process = poseshift(part)
    log_path = part / "log.jsonl"
    deadline = time.monotonic() + 120
    while not (log_path.exists() and len(log_path.read_text().splitlines()) >= 3):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0]
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 130, output
    assert "run the same command to resume" in " ".join(output.split())
    assert (part / "checkpoints" / "last.pt").exists() and not (part / "done.json").exists()
    assert full.wait(timeout=300) == 0, full.communicate()[0]

    resumed = poseshift(part)
    assert resumed.wait(timeout=300) == 0, resumed.communicate()[0]
    logs = [
        [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
        for run in (tmp_path / "full", part)
    ]
    assert [r["iteration"] for r in logs[1]] == list(range(1, 11))
    assert [r["total"] for r in logs[1]] == pytest.approx([r["total"] for r in logs[0]], rel=1e-5)
    weights = [
        torch.load(run / "checkpoints" / "last.pt", weights_only=False)["model"]
        for run in (tmp_path / "full", part)
    ]
    for key, value in weights[0].items():
        torch.testing.assert_close(weights[1][key], value, rtol=1e-5, atol=1e-6)
