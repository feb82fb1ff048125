"""``poseshift bench speed`` on a tiny setting: cells, skips, CSV, plot and paper tables."""

from __future__ import annotations

from pathlib import Path

import cv2
import pandas as pd
from typer.testing import CliRunner

from poseshift.bench.paper import paper_fps
from poseshift.bench.speed import (
    comparison_table,
    results_frame,
    run_speed_benchmark,
    synthetic_clip,
    write_results,
)
from poseshift.cli import app


def test_cells_csv_plot_and_tables(tmp_path: Path) -> None:
    clip = synthetic_clip(tmp_path / "clip.mp4", frames=6, size=(96, 64))
    cells = run_speed_benchmark(
        ["mobilenetv2_035"],
        [32, 64],
        batch_sizes=[1, 4, 8],
        video=clip,
        device="cpu",
        max_seconds=5.0,
        min_seconds=0.01,
        keypoints=3,
    )
    assert [(c.size, c.batch_size, c.mode) for c in cells[:4]] == [
        (32, 1, "model"),
        (32, 1, "video"),
        (32, 4, "model"),
        (32, 4, "video"),
    ]
    by_key = {(c.size, c.batch_size, c.mode): c for c in cells}
    assert all(c.fps > 0 for c in cells if (c.batch_size, c.mode) != (8, "video"))
    assert by_key[(32, 4, "video")].frames == 6  # one full batch and a partial one
    assert "larger than the 6-frame clip" in by_key[(64, 8, "video")].note
    frame = results_frame(cells, device="cpu", precision="fp32")
    csv, png = write_results(frame, tmp_path / "out")
    table = pd.read_csv(csv)
    assert len(table) == 12 and {"fps", "note", "device"} <= set(table.columns)
    assert cv2.imread(str(png)).shape[1] > 600  # two panels
    tables = comparison_table(frame, 8)
    assert tables.loc["mobilenetv2_035", "64 video"] == "skipped"
    assert tables.loc["mobilenetv2_035", "32 paper"] == "-"


def test_slow_cells_are_skipped_not_run() -> None:
    cells = run_speed_benchmark(
        ["mobilenetv2_035"],
        [32],
        batch_sizes=[1, 512],
        device="cpu",
        max_seconds=1e-4,
        min_seconds=0.01,
        modes=["model"],
    )
    assert cells[0].fps is not None and cells[1].fps is None
    assert cells[1].note.startswith("skipped: warm-up + one batch")


def test_paper_numbers() -> None:
    assert paper_fps("mobilenetv2_035", 128, 1) == 195
    assert paper_fps("resnet50", 256, 256) == 339
    assert paper_fps("mobilenetv2_035", 512, 1) is None  # garbled in the source text
    frame = pd.DataFrame(
        {
            "backbone": ["resnet50"],
            "size": [512],
            "batch_size": [1],
            "mode": ["model"],
            "fps": [3.14],
        }
    )
    row = comparison_table(frame, 1).loc["resnet50"]
    assert row.tolist() == ["3.1", "-", "?"]


def test_cli_writes_csv_png_and_prints_both_tables(tmp_path: Path) -> None:
    args = ["bench", "speed", "--backbones", "mobilenetv2_035", "--sizes", "32"]
    args += ["--batch-sizes", "1,2", "--frames", "4", "--keypoints", "3", "--device", "cpu"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path), "--max-seconds", "2"])
    assert result.exit_code == 0, result.output
    assert "Batch size 1 (FPS)" in result.output and "Table 2" in result.output
    assert (tmp_path / "speed.csv").is_file() and (tmp_path / "speed.png").is_file()
    assert len(pd.read_csv(tmp_path / "speed.csv")) == 4
