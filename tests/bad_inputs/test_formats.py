"""Bad label sources for ``poseshift data import``: one line, and nothing written.

Truncated and foreign files, a .slp whose video is gone, a skeleton that names unknown
nodes, labels that are all NaN, a source of no known format.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import sleap_io
from refusals import cli_refuses, one_line_error

from conftest import make_project
from poseshift.data.formats.export import export_labels
from poseshift.data.formats.read import ImportOptions, import_labels
from poseshift.data.project import load_project
from poseshift.errors import PoseshiftError


@pytest.fixture
def slp(tmp_path: Path) -> Path:
    make_project(tmp_path / "src", groups=1, frames=2)
    return export_labels(load_project(tmp_path / "src"), tmp_path / "labels.slp")


def refused(source: Path, match: str, tmp_path: Path, *args: str) -> str:
    """Refused by the library and by the CLI in one line naming ``source``; nothing left."""
    out = tmp_path / "out" / "new"
    with pytest.raises(PoseshiftError, match=match) as excinfo:
        import_labels(source, out, ImportOptions())
    one_line_error(excinfo)
    line = cli_refuses(["data", "import", source, out, *args], source)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    return line


def test_truncated_slp(slp: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.slp"
    cut.write_bytes(slp.read_bytes()[:2000])
    refused(cut, r"is not an HDF5 file|cannot be read as a SLEAP", tmp_path)


@pytest.mark.parametrize("name", ["notes.slp", "notes.nwb"])
def test_foreign_file(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("frame,x,y\n1,2,3\n")
    refused(tmp_path / name, r"is not an HDF5 file", tmp_path)


def test_nwb_without_training_frames(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "empty.nwb", "w") as f:
        f.create_group("processing/behavior")
    refused(tmp_path / "empty.nwb", r"has no ndx-pose training frames", tmp_path)


def test_slp_whose_video_is_missing(tmp_path: Path) -> None:
    skeleton = sleap_io.Skeleton(["a", "b"])
    video = sleap_io.Video(filename=str(tmp_path / "gone.mp4"), open_backend=False)
    instance = sleap_io.Instance.from_numpy(np.array([[1.0, 2.0], [3.0, 4.0]]), skeleton=skeleton)
    labels = sleap_io.Labels(
        [sleap_io.LabeledFrame(video=video, frame_idx=5, instances=[instance])]
    )
    sleap_io.save_slp(labels, str(tmp_path / "lost.slp"))
    line = refused(tmp_path / "lost.slp", r"refers to .*gone\.mp4, which is missing", tmp_path)
    assert "gone.mp4" in line


def test_nwb_skeleton_naming_unknown_nodes(slp: Path, tmp_path: Path) -> None:
    sleap_io.save_nwb(sleap_io.load_file(str(slp)), str(tmp_path / "bad.nwb"))
    with h5py.File(tmp_path / "bad.nwb", "r+") as f:
        skeletons = f["processing/behavior/Skeletons"]
        edges = skeletons[next(iter(skeletons))]["edges"]
        edges[0] = [0, 7]
    refused(
        tmp_path / "bad.nwb", r"has an edge to node 7, but its nodes are Nose, Eye, Tail", tmp_path
    )


def test_nan_only_labels(tmp_path: Path) -> None:
    make_project(tmp_path / "src", groups=1, frames=2)
    dataset = load_project(tmp_path / "src")
    dataset.keypoints[:] = np.nan
    export_labels(dataset, tmp_path / "empty.slp")
    refused(tmp_path / "empty.slp", r"all 2 frames have only unlabeled \(NaN\) keypoints", tmp_path)


def test_unknown_format(tmp_path: Path) -> None:
    (tmp_path / "poses.txt").write_text("nothing")
    line = refused(tmp_path / "poses.txt", r"cannot tell which tool", tmp_path)
    assert "--format" in line
    (tmp_path / "x.json").write_text('{"a": 1}')
    refused(tmp_path / "x.json", r"neither COCO keypoints .* nor a Label Studio export", tmp_path)


def test_export_extension_names_the_format(tmp_path: Path) -> None:
    make_project(tmp_path / "src", groups=1, frames=2)
    line = cli_refuses(["data", "export", tmp_path / "src", tmp_path / "labels.h5"], "labels.h5")
    assert ".slp" in line and not (tmp_path / "labels.h5").exists()
