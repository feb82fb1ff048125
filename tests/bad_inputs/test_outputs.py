"""Output locations: a file where a folder belongs is refused before any work, in one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from refusals import cli_refuses

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "predict"))
from tiny_video import tiny_run, write_video


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory)


def test_train_out_that_is_a_file(tiny_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.txt"
    out.write_text("keep me")
    args = ["train", tiny_project, "--backbone", "mobilenetv2_035", "--init", "scratch"]
    line = cli_refuses([*args, "--out", out], out)
    assert "is a file, not a folder" in line
    assert out.read_text() == "keep me"


def test_train_out_below_a_file(tiny_project: Path, tmp_path: Path) -> None:
    parent = tmp_path / "file"
    parent.write_text("")
    args = ["train", tiny_project, "--backbone", "mobilenetv2_035", "--init", "scratch"]
    assert "is a file, not a folder" in cli_refuses([*args, "--out", parent / "run"], parent)


def test_analyze_dest_that_is_a_file_is_refused_before_analysis(run: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", 4)
    dest = tmp_path / "dest"
    dest.write_text("")
    line = cli_refuses(["analyze", run, video, "--dest", dest, "--no-compile"], dest)
    assert "--dest" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "dest"]


def test_study_out_that_is_a_file(tmp_path: Path) -> None:
    out = tmp_path / "study"
    out.write_text("")
    assert "is a file, not a folder" in cli_refuses(["study", "run", "demo", "--out", out], out)


@pytest.mark.parametrize("command", ["evaluate", "export"])
def test_a_snapshot_that_is_no_iteration(run: Path, command: str) -> None:
    line = cli_refuses([command, run, "--snapshot", "latest"], "latest")
    assert "'last'" in line
