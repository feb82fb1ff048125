"""A project that does not fit the command: refused in one line before anything is written."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml
from refusals import cli_refuses

from conftest import make_project

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "predict"))
from tiny_video import tiny_run, write_video


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory)


@pytest.mark.parametrize("pcutoff", ["high", 1.5, True])
def test_a_pcutoff_that_is_no_likelihood(run: Path, tmp_path: Path, pcutoff: object) -> None:
    project, copy = tmp_path / "proj", tmp_path / "run"
    shutil.copytree(yaml.safe_load((run / "run.yaml").read_text())["project"], project)
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("eval"))
    spec = yaml.safe_load((copy / "run.yaml").read_text())
    (copy / "run.yaml").write_text(yaml.safe_dump({**spec, "project": str(project)}))
    config = yaml.safe_load((project / "config.yaml").read_text())
    (project / "config.yaml").write_text(yaml.safe_dump({**config, "pcutoff": pcutoff}))
    line = cli_refuses(["evaluate", copy, "--device", "cpu"], project / "config.yaml")
    assert "pcutoff" in line and "0 to 1" in line
    assert not (copy / "eval").exists()


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("pcutoff", "high", "0 to 1"),
        ("pcutoff", 2, "0 to 1"),
        ("pcutoff", float("nan"), "0 to 1"),
        ("dotsize", "big", "whole number"),
        ("dotsize", float("inf"), "whole number"),
        ("dotsize", float("nan"), "whole number"),
    ],
)
def test_label_video_reads_the_checked_style(
    run: Path, tmp_path: Path, key: str, value: object, says: str
) -> None:
    """The drawing style is config.yaml's checked values, read before any analysis."""
    project, copy = tmp_path / "proj", tmp_path / "run"
    shutil.copytree(yaml.safe_load((run / "run.yaml").read_text())["project"], project)
    shutil.copytree(run, copy)
    spec = yaml.safe_load((copy / "run.yaml").read_text())
    (copy / "run.yaml").write_text(yaml.safe_dump({**spec, "project": str(project)}))
    config = yaml.safe_load((project / "config.yaml").read_text())
    (project / "config.yaml").write_text(yaml.safe_dump({**config, key: value}))
    video = write_video(tmp_path / "m6.mp4", frames=4)
    line = cli_refuses(["label-video", copy, video, "--no-compile"], project / "config.yaml")
    assert key in line and says in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m6.mp4", "proj", "run"]  # no analysis


def test_label_video_refuses_a_pcutoff_option_of_no_likelihood(run: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "m7.mp4", frames=4)
    line = cli_refuses(["label-video", run, video, "--pcutoff", "1.5"], "--pcutoff 1.5")
    assert "0 to 1" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m7.mp4"]


def test_outliers_into_a_project_of_other_bodyparts(run: Path, tmp_path: Path) -> None:
    project = tmp_path / "dlc"
    make_project(project, groups=1, frames=2, bodyparts=("snout", "leftear", "tailbase"))
    config = (project / "config.yaml").read_text()
    video = write_video(tmp_path / "m5.mp4", frames=8)
    args = ["outliers", run, video, "--project", project, "--n", "2", "--no-compile"]
    line = cli_refuses(args, project / "config.yaml")
    assert "'snout'" in line and "'Nose'" in line
    assert not (project / "labeled-data" / "m5").exists()
    assert (project / "config.yaml").read_text() == config
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dlc", "m5.mp4"]  # no analysis
