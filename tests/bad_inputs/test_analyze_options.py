"""Bad ``analyze`` options: one line before anything is touched; earlier poses keep their record."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from refusals import cli_refuses, one_line_error
from typer.testing import CliRunner

from poseshift.cli import app
from poseshift.errors import PoseshiftError
from poseshift.predict.video import analyze_videos
from poseshift.predict.video_extras import analyze_with_extras

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "predict"))
from tiny_video import tiny_run, write_video

ANALYZERS: dict[str, Callable] = {
    "analyze": analyze_videos,
    "--reliability": partial(analyze_with_extras, reliability=True),
    "--adapt": partial(analyze_with_extras, adapt=True),
}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory)


@pytest.fixture(scope="module")
def analyzed(run: Path, tmp_path_factory) -> tuple[Path, Path]:
    """A clip analyzed with ``--export slp`` into its own folder: (clip, folder)."""
    folder = tmp_path_factory.mktemp("analyzed")
    clip = write_video(folder / "clip.mp4", frames=4)
    analyze_videos(run, [clip], export=["slp"], show_progress=False)
    return clip, folder


def untouched(run: Path, folder: Path) -> Callable[[], None]:
    """A check that the folder's files and the run's adapted runs are as they are now."""

    def state() -> tuple[dict[str, int], list[Path]]:
        files = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
        return files, sorted((run / "adapted").glob("*"))

    before = state()
    assert any(name.endswith(".json") for name in before[0])  # the record of the poses

    def check() -> None:
        assert state() == before

    return check


@pytest.mark.parametrize("resize", [(0, 0), (-32, 24), (32, 0)])
@pytest.mark.parametrize("analyzer", list(ANALYZERS))
def test_a_resize_below_one_pixel_is_refused_before_anything_is_touched(
    run: Path, analyzed: tuple[Path, Path], resize: tuple[int, int], analyzer: str
) -> None:
    clip, folder = analyzed
    check = untouched(run, folder)
    with pytest.raises(PoseshiftError) as excinfo:
        ANALYZERS[analyzer](run, [clip], resize=resize, export=["slp"], show_progress=False)
    shown = "x".join(map(str, resize))
    assert one_line_error(excinfo) == f"--resize must be WIDTHxHEIGHT with both ≥ 1, got {shown}"
    check()


@pytest.mark.parametrize("extra", [[], ["--reliability"], ["--adapt"]])
def test_the_cli_refuses_bad_sizes_and_batch_sizes_before_anything_is_touched(
    run: Path, analyzed: tuple[Path, Path], extra: list[str]
) -> None:
    clip, folder = analyzed
    check = untouched(run, folder)
    args = ["analyze", run, clip, "--export", "slp", *extra]
    line = cli_refuses([*args, "--batch-size", "0"], "--batch-size")
    assert line == "error: --batch-size must be at least 1, got 0"
    for size in ("0x0", "-32x24"):
        result = CliRunner().invoke(app, [str(a) for a in [*args, f"--resize={size}"]])
        assert result.exit_code == 2 and "Traceback" not in result.output
    check()
