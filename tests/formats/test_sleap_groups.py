"""Groups of a SLEAP import: one per video, never two sessions merged into one.

``mouse.day1.mp4`` and ``mouse.day2.mp4`` are two sessions (only the extension is dropped);
``mouseA/cam0.mp4`` and ``mouseB/cam0.mp4`` two animals (told apart by their folder). Files
are written by sleap-io itself, with real videos.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import sleap_io
import yaml
from typer.testing import CliRunner

from poseshift.cli import app
from poseshift.data.formats.read import ImportOptions, import_labels


def write_video(path: Path) -> sleap_io.Video:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(4):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    return sleap_io.Video.from_filename(str(path))


def labels_of(videos: list[Path], out: Path) -> Path:
    """A .slp labeling frame 1 of each video (the same frame number: same image names)."""
    skeleton = sleap_io.Skeleton(nodes=["a", "b"], edges=[["a", "b"]], name="m")
    frames = [
        sleap_io.LabeledFrame(
            video=write_video(path),
            frame_idx=1,
            instances=[
                sleap_io.Instance.from_numpy(np.array([[5.0, 5.0], [9.0, 9.0]]), skeleton=skeleton)
            ],
        )
        for path in videos
    ]
    sleap_io.save_slp(sleap_io.Labels(frames, skeletons=[skeleton]), str(out))
    return out


def test_dotted_video_names_stay_two_sessions(tmp_path: Path) -> None:
    slp = labels_of([tmp_path / "mouse.day1.mp4", tmp_path / "mouse.day2.mp4"], tmp_path / "s.slp")
    project = import_labels(slp, tmp_path / "p", ImportOptions())
    assert project.group_names == ["mouse.day1", "mouse.day2"]
    config = yaml.safe_load((tmp_path / "p/config.yaml").read_text())
    assert list(config["video_sets"]) == [
        str((tmp_path / f"mouse.day{d}.mp4").resolve()) for d in (1, 2)
    ]


def test_same_video_name_in_two_folders_gets_the_folder_name(tmp_path: Path) -> None:
    videos = [tmp_path / "mouseA/cam0.mp4", tmp_path / "mouseB/cam0.mp4"]
    project = import_labels(labels_of(videos, tmp_path / "s.slp"), tmp_path / "p", ImportOptions())
    assert sorted(project.group_names) == ["mouseA_cam0", "mouseB_cam0"]
    config = yaml.safe_load((tmp_path / "p/config.yaml").read_text())
    # DeepLabCut finds labeled-data/<video stem>: the renamed folders are listed by path.
    assert sorted(config["video_sets"]) == [
        str((tmp_path / f"p/labeled-data/mouse{m}_cam0").resolve()) for m in "AB"
    ]


def test_names_that_stay_equal_with_their_folder_are_refused(tmp_path: Path) -> None:
    videos = [tmp_path / "a/mouse/cam0.mp4", tmp_path / "b/mouse/cam0.mp4"]
    slp = labels_of(videos, tmp_path / "s.slp")
    result = CliRunner().invoke(app, ["data", "import", str(slp), str(tmp_path / "p")])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()  # one line, no traceback
    assert line.startswith("error: ") and "'mouse_cam0'" in line
    assert all(str(video.resolve()) in line for video in videos)
    assert not (tmp_path / "p").exists()
