"""Data-import traps that used to pass silently or end in a traceback.

A COCO --images folder one level off (same-named frames of another video), a coordinate
without its partner, label files of another scorer or in a folder that merely ends in
``_labeled``, a group map with typos or repeats or in another encoding, an .h5 whose column
levels have no names, and an output path below an existing file.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from refusals import cli_refuses, one_line_error

from conftest import make_project
from poseshift.data.coco import export_coco, import_coco, to_coco
from poseshift.data.project import load_project, read_group_map
from poseshift.errors import PoseshiftError

LABELS = "labeled-data/video0/CollectedData_tester"


def plain_coco(source: Path, path: Path) -> Path:
    """A COCO file without poseshift's ``group``: file_name ``video<g>/img<f>.png``."""
    data = to_coco(load_project(source))
    for image in data["images"]:
        image.pop("group")
        image["file_name"] = image["file_name"].removeprefix("labeled-data/")
    path.write_text(json.dumps(data))
    return path


def test_coco_images_folder_one_level_too_deep_is_refused(tmp_path: Path) -> None:
    make_project(tmp_path / "src", groups=2, frames=2)
    coco = plain_coco(tmp_path / "src", tmp_path / "coco.json")
    too_deep = tmp_path / "src/labeled-data/video0"  # holds img000.png of video0 only
    out = tmp_path / "out"
    line = cli_refuses(["data", "import", coco, out, "--images", too_deep], too_deep)
    assert "'video0/img000.png' not found" in line and "one folder too deep" in line
    assert not out.exists()
    project = import_coco(coco, tmp_path / "src/labeled-data", out)  # the right folder
    for name in project.images:
        assert (out / name).read_bytes() == (tmp_path / "src" / name).read_bytes()


def test_coco_backslash_file_names_find_their_own_folder(tmp_path: Path) -> None:
    """A file made on Windows: ``video1\\img000.png`` is video1's frame, not video0's."""
    make_project(tmp_path / "src", groups=2, frames=2)
    coco = plain_coco(tmp_path / "src", tmp_path / "coco.json")
    data = json.loads(coco.read_text())
    for image in data["images"]:
        image["file_name"] = image["file_name"].replace("/", "\\")
    coco.write_text(json.dumps(data))
    project = import_coco(coco, tmp_path / "src/labeled-data", tmp_path / "out")
    assert "labeled-data/video1/img000.png" in project.images
    for name in project.images:
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "src" / name).read_bytes()


def test_a_coordinate_without_its_partner_is_unlabeled_with_a_warning(tmp_path: Path) -> None:
    make_project(tmp_path / "p", groups=1, frames=2)
    (tmp_path / f"p/{LABELS}.h5").unlink()  # a hand-edited CSV
    csv = tmp_path / f"p/{LABELS}.csv"
    lines = csv.read_text().splitlines()
    cells = lines[3].split(",")
    cells[4] = ""  # Nose y deleted, Nose x kept
    lines[3] = ",".join(cells)
    csv.write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning) as caught:
        dataset = load_project(tmp_path / "p")
    message = " ".join(str(w.message) for w in caught)
    assert str(csv) in message and "Nose in row 'labeled-data/video0/img000.png'" in message
    assert np.isnan(dataset.keypoints[0, 0]).all()
    assert np.isfinite(dataset.keypoints[0, 1:]).all()  # the frame's other labels stay
    exported = export_coco(dataset, tmp_path / "p.json").read_text()
    assert "NaN" not in exported  # strict JSON: the point is exported as unlabeled (0, 0, 0)


def test_labels_of_another_scorer_are_named_in_a_warning(tmp_path: Path) -> None:
    make_project(tmp_path / "p", groups=3, frames=2)
    folder = tmp_path / "p/labeled-data/video2"
    for suffix in (".h5", ".csv"):
        (folder / f"CollectedData_tester{suffix}").rename(folder / f"CollectedData_alice{suffix}")
    with pytest.warns(UserWarning, match=r"video2/CollectedData_alice.h5.*CollectedData_tester"):
        dataset = load_project(tmp_path / "p")
    assert dataset.group_names == ["video0", "video1"]


def test_a_folder_ending_in_labeled_is_read_when_it_holds_labels(tmp_path: Path) -> None:
    make_project(tmp_path / "p", groups=2, frames=2)
    labeled = tmp_path / "p/labeled-data"
    (labeled / "video1").rename(labeled / "mouse2_labeled")
    for path in (labeled / "mouse2_labeled").glob("CollectedData_*"):
        if path.suffix == ".h5":
            path.unlink()  # the .csv names rows by folder: rewrite it for the new name
        else:
            path.write_text(path.read_text().replace("video1", "mouse2_labeled"))
    (labeled / "video0_labeled").mkdir()  # DeepLabCut's check_labels output: no labels
    (labeled / "video0_labeled/img000_labeled.png").write_bytes(b"")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no warning about the check_labels folder
        dataset = load_project(tmp_path / "p")
    assert dataset.group_names == ["mouse2_labeled", "video0"]


@pytest.mark.parametrize(
    ("rows", "match", "named"),
    [
        ("video0,horseA\nvideo1 ,horseA\n", r"name no video folder .* e.g. 'video1 '", "video1 "),
        ("video0,A\nvideo2,B\nvideo2,C\n", r"'video2' is listed in rows 3 and 4", "groups.csv"),
    ],
)
def test_group_map_typos_and_repeats_are_refused(
    tmp_path: Path, rows: str, match: str, named: str
) -> None:
    make_project(tmp_path / "p", groups=3, frames=2)
    mapping = tmp_path / "groups.csv"
    mapping.write_text("video,group\n" + rows)
    with pytest.raises(PoseshiftError, match=match) as excinfo:
        load_project(tmp_path / "p", read_group_map(mapping))
    one_line_error(excinfo)
    cli_refuses(["data", "info", tmp_path / "p", "--groups", mapping], named)


def test_group_map_in_another_encoding_is_refused(tmp_path: Path) -> None:
    make_project(tmp_path / "p", groups=1, frames=2)
    mapping = tmp_path / "groups.csv"
    mapping.write_bytes(b"\xff\xfe\x00\x01binary")
    line = cli_refuses(["data", "info", tmp_path / "p", "--groups", mapping], mapping)
    assert "cannot be read" in line


def test_h5_with_unnamed_column_levels_is_read(tmp_path: Path) -> None:
    dataset = make_project(tmp_path / "p", groups=1, frames=2)
    path = tmp_path / f"p/{LABELS}.h5"
    frame = pd.read_hdf(path)
    frame.columns = frame.columns.set_names([None, None, None])  # written by a script
    frame.to_hdf(path, key="df_with_missing", mode="w")
    back = load_project(tmp_path / "p")
    np.testing.assert_allclose(back.keypoints, dataset.keypoints, atol=1e-4)


def test_import_below_an_existing_file_is_refused(tmp_path: Path) -> None:
    make_project(tmp_path / "src", groups=1, frames=2)
    coco = plain_coco(tmp_path / "src", tmp_path / "coco.json")
    blocker = tmp_path / "afile"
    blocker.write_text("keep me")
    line = cli_refuses(
        ["data", "import", coco, blocker / "new", "--images", tmp_path / "src/labeled-data"],
        blocker,
    )
    assert "is a file, not a folder" in line and blocker.read_text() == "keep me"


@pytest.mark.parametrize("name", ["x.json", "x.slp"])
def test_export_below_an_existing_file_is_refused(tmp_path: Path, name: str) -> None:
    make_project(tmp_path / "p", groups=1, frames=2)
    blocker = tmp_path / "afile"
    blocker.write_text("keep me")
    line = cli_refuses(["data", "export", tmp_path / "p", blocker / name], blocker)
    assert "is a file, not a folder" in line and blocker.read_text() == "keep me"
