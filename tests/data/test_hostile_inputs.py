"""Hostile inputs (issue #18): tar tricks and bombs, pickles in .h5 files, names that escape.

Every hostile file is generated here and harmless: the "payload" only creates a marker file,
and the tests assert that it never appears and that nothing is written outside its folder.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import tables
from typer.testing import CliRunner

from conftest import make_project
from poseshift.cli import app
from poseshift.data.coco import import_coco, to_coco
from poseshift.data.hdf import read_hdf_safely
from poseshift.data.project import labels_frame, load_project, read_labels, write_labels
from poseshift.data.scale import read_official_scale
from poseshift.data.splits import load_split
from poseshift.datasets import horse10
from poseshift.errors import PoseshiftError
from poseshift.fsutil import safe_child
from poseshift.predict.outputs import poses_frame, write_poses
from poseshift.untar import extract_safely, member_refusal

OPENFIELD_LABELS = Path(
    "/work/shared/data/openfield/openfield-Pranav-2018-10-30/labeled-data/m4s1/"
    "CollectedData_Pranav.h5"
)


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# ----------------------------------------------------------------------------- tar archives


def add(tar: tarfile.TarFile, name: str, kind: bytes = tarfile.REGTYPE, **fields) -> None:
    member = tarfile.TarInfo(name)
    member.type = kind
    data = fields.pop("data", b"pwned" if kind == tarfile.REGTYPE else None)
    for key, value in fields.items():
        setattr(member, key, value)
    member.size = len(data or b"")
    tar.addfile(member, io.BytesIO(data) if data is not None else None)


def symlink_chain_archive(path: Path) -> None:
    """CVE-2025-4517's pattern: 247-char folders, one-letter links, escape -> <link>/../../."""
    folder, steps, current = "d" * 247, "abcdefghijklmnop", ""
    with tarfile.open(path, "w") as tar:
        for step in steps:
            add(tar, os.path.join(current, folder), tarfile.DIRTYPE)
            add(tar, os.path.join(current, step), tarfile.SYMTYPE, linkname=folder)
            current = os.path.join(current, folder)
        link = os.path.join("/".join(steps), "l" * 254)
        add(tar, link, tarfile.SYMTYPE, linkname="../" * len(steps))
        add(tar, "escape", tarfile.SYMTYPE, linkname=link + "/../../")
        add(tar, "escape/FILE")


def assert_nothing_left(tmp_path: Path, dest: Path) -> None:
    assert list(dest.iterdir()) == []  # no project, no hidden staging folder
    assert not list(tmp_path.rglob("FILE")) and not list(tmp_path.rglob("evil*"))


def test_symlink_chain_cannot_write_outside_dest(tmp_path: Path) -> None:
    symlink_chain_archive(tmp_path / "cve.tar")
    dest = tmp_path / "a" / "b" / "dest"
    with pytest.raises(PoseshiftError, match=r"is refused: member 'a' is a symbolic link") as exc:
        horse10.fetch_horse10(dest, archive=tmp_path / "cve.tar")
    assert "cve.tar" in one_line_error(exc)
    assert_nothing_left(tmp_path, dest)


HOSTILE_MEMBERS = {
    "harmless-looking symlink": (dict(kind=tarfile.SYMTYPE, linkname="x.png"), "symbolic link"),
    "hardlink": (dict(kind=tarfile.LNKTYPE, linkname="horse10/labeled-data"), "hard link"),
    "fifo": (dict(kind=tarfile.FIFOTYPE), "device or FIFO"),
    "block device": (dict(kind=tarfile.BLKTYPE), "device or FIFO"),
    "GNU volume label": (dict(kind=b"V"), "not a regular file or folder"),
}


@pytest.mark.parametrize("case", list(HOSTILE_MEMBERS))
def test_every_link_and_special_member_is_refused(case: str, tmp_path: Path) -> None:
    fields, why = HOSTILE_MEMBERS[case]
    with tarfile.open(tmp_path / "bad.tar.gz", "w:gz") as tar:
        add(tar, "horse10/labeled-data", tarfile.DIRTYPE)
        add(tar, "horse10/labeled-data/evil", fields.pop("kind"), **fields)
    dest = tmp_path / "dest"
    with pytest.raises(PoseshiftError, match=f"member 'horse10/labeled-data/evil' is (an? )?{why}"):
        horse10.fetch_horse10(dest, archive=tmp_path / "bad.tar.gz")
    assert_nothing_left(tmp_path, dest)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("horse10/../../evil.txt", "contains '..'"),
        ("/tmp/evil.txt", "absolute path"),
        ("C:/evil.txt", "absolute path"),
        ("horse10\\..\\..\\evil.txt", "backslash"),
        ("horse10/evil\0.txt", "NUL"),
        ("horse10/" + "e" * 300, "too long"),
        ("horse10/" + "/".join(["evil"] * 300), "too long"),
    ],
)
def test_unsafe_names_are_refused(name: str, why: str, tmp_path: Path) -> None:
    assert why in (member_refusal(tarfile.TarInfo(name)) or "")
    if "\0" in name:
        return  # a tar header cannot carry NUL; the check above is the whole story
    with tarfile.open(tmp_path / "bad.tar", "w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, name)
    dest = tmp_path / "dest"
    with pytest.raises(PoseshiftError, match="is refused: member") as exc:
        horse10.fetch_horse10(dest, archive=tmp_path / "bad.tar")
    assert why in one_line_error(exc) and len(str(exc.value)) < 600
    assert_nothing_left(tmp_path, dest)


def test_decompression_bomb_stops_early_and_leaves_nothing(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.tar.xz"
    with tarfile.open(bomb, "w:xz") as tar:
        add(tar, "horse10/labeled-data/a.png", data=bytes(600_000))
        add(tar, "horse10/labeled-data/b.png", data=bytes(8 * 1024 * 1024))
    assert bomb.stat().st_size < 10_000  # small on disk, large once expanded
    dest = tmp_path / "dest"
    with pytest.raises(PoseshiftError, match=r"'horse10/labeled-data/b.png' takes .* 1,000,000"):
        horse10.fetch_horse10(dest, archive=bomb, max_bytes=1_000_000)
    assert_nothing_left(tmp_path, dest)


def test_huge_tar_headers_are_capped_too(tmp_path: Path) -> None:
    bomb = tmp_path / "pax.tar.xz"
    with tarfile.open(bomb, "w:xz", format=tarfile.PAX_FORMAT) as tar:
        member = tarfile.TarInfo("horse10/x.png")
        member.pax_headers = {"comment": "x" * (20 * 1024 * 1024)}  # read into memory by tarfile
        tar.addfile(member, io.BytesIO(b""))
    with pytest.raises(PoseshiftError, match=r"expands to more than [\d,]+ bytes of tar data"):
        extract_safely(bomb, tmp_path / "out", max_bytes=1000)


def test_member_count_is_capped(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "many.tar", "w") as tar:
        for i in range(12):
            add(tar, f"horse10/f{i}", tarfile.DIRTYPE)
    (tmp_path / "out").mkdir()
    with pytest.raises(PoseshiftError, match="more than 10 members"):
        extract_safely(tmp_path / "many.tar", tmp_path / "out", max_members=10)


def test_ctrl_c_during_extraction_leaves_no_staging_folder(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "ok.tar", "w") as tar:
        for i in range(3):
            add(tar, f"horse10/labeled-data/v/{i}.png")

    def interrupt(stage: str, done: int, total: int | None) -> None:
        if stage == "extract":
            raise KeyboardInterrupt

    dest = tmp_path / "dest"
    with pytest.raises(KeyboardInterrupt):
        horse10.fetch_horse10(dest, archive=tmp_path / "ok.tar", progress=interrupt)
    assert list(dest.iterdir()) == []


def test_regular_files_keep_safe_modes(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "modes.tar", "w") as tar:
        add(tar, "./horse10/run.sh", mode=0o4777)
    out = tmp_path / "out"
    out.mkdir()
    assert extract_safely(tmp_path / "modes.tar", out) == 1
    assert (out / "horse10" / "run.sh").read_bytes() == b"pwned"
    assert (out / "horse10" / "run.sh").stat().st_mode & 0o7111 == 0  # no setuid, no exec


# ----------------------------------------------------------------------------- .h5 pickles


class Payload:
    """Unpickling this creates ``marker``: the stand-in for running an attacker's code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def label_frame() -> pd.DataFrame:
    images = ["labeled-data/v/img000.png", "labeled-data/v/img001.png"]
    return labels_frame("tester", ["Nose", "Eye"], images, np.ones((2, 2, 2)), "path")


def pickled_column_file(path: Path, marker: Path) -> Path:
    frame = label_frame()
    frame[("tester", "Tail", "x")] = pd.Series([Payload(marker), 1.0], frame.index, object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns that it pickles the object column
        frame.to_hdf(path, key="df_with_missing", mode="w")
    return path


def pickled_attribute_file(path: Path, marker: Path, node: str, attribute: str, fmt: str) -> Path:
    label_frame().to_hdf(path, key="df_with_missing", mode="w", format=fmt)
    with tables.open_file(path, "a") as handle:  # PyTables pickles what is not a plain value
        handle.set_node_attr(node, attribute, Payload(marker))
    return path


HOSTILE_H5 = {
    "object column (fixed format)": lambda p, m: pickled_column_file(p, m),
    "group attribute (fixed format)": lambda p, m: pickled_attribute_file(
        p, m, "/df_with_missing", "encoding", "fixed"
    ),
    "root TITLE, read on opening": lambda p, m: pickled_attribute_file(p, m, "/", "TITLE", "fixed"),
    "table attribute (table format)": lambda p, m: pickled_attribute_file(
        p, m, "/df_with_missing/table", "values_block_0_kind", "table"
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE_H5))
def test_label_files_never_unpickle(case: str, tmp_path: Path) -> None:
    marker = tmp_path / "CODE-RAN"
    path = HOSTILE_H5[case](tmp_path / "CollectedData_tester.h5", marker)
    with pytest.raises(PoseshiftError, match="holds pickled Python objects") as exc:
        read_labels(path)
    message = one_line_error(exc)
    assert str(path) in message and "poseshift never loads" in message
    assert not marker.exists()
    with pytest.raises(PoseshiftError, match="holds pickled Python objects"):
        read_official_scale(path)  # the scale file reader shares the check
    assert not marker.exists()


def test_data_info_refuses_a_crafted_label_file(tmp_path: Path) -> None:
    make_project(tmp_path / "proj", groups=1, frames=2, bodyparts=("Nose", "Eye"))
    marker = tmp_path / "CODE-RAN"
    pickled_column_file(tmp_path / "proj/labeled-data/video0/CollectedData_tester.h5", marker)
    result = CliRunner().invoke(app, ["data", "info", str(tmp_path / "proj")])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and "holds pickled Python objects" in result.output
    assert not marker.exists()


def test_prediction_files_never_unpickle(tmp_path: Path) -> None:
    marker = tmp_path / "CODE-RAN"
    h5 = write_poses(tmp_path / "mouseDLC.h5", poses_frame("DLC", ["a"], np.ones((2, 1, 3))))
    with tables.open_file(h5, "a") as handle:
        handle.set_node_attr("/df_with_missing", "nblocks", Payload(marker))
    with pytest.raises(PoseshiftError, match=r"mouseDLC\.h5 holds pickled Python objects"):
        read_hdf_safely(h5, what="prediction file")
    assert not marker.exists()


def test_links_in_an_h5_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "links.h5"
    label_frame().to_hdf(path, key="df_with_missing", mode="w")
    with h5py.File(path, "a") as handle:
        handle["elsewhere"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/x")
    with pytest.raises(PoseshiftError, match="/elsewhere is a ExternalLink"):
        read_hdf_safely(path)


@pytest.mark.parametrize("content", [b"", b"\x89HDF\r\n\x1a\n" + b"\xff" * 300, b"not hdf5"])
def test_empty_or_garbage_label_file_is_one_line(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "CollectedData_tester.h5"
    path.write_bytes(content)
    with pytest.raises(PoseshiftError, match="not a readable DeepLabCut label file") as exc:
        read_labels(path)
    assert str(path) in one_line_error(exc)


def test_legitimate_files_still_load(tmp_path: Path) -> None:
    """DeepLabCut's table format, poseshift's fixed format (both index styles), predictions."""
    if OPENFIELD_LABELS.is_file():  # a real DeepLabCut 2018 file (table format)
        assert read_labels(OPENFIELD_LABELS).shape == (116, 8)
    frame = label_frame()
    h5, _ = write_labels(tmp_path, frame)
    pd.testing.assert_frame_equal(read_labels(h5), frame)
    tuples = labels_frame("tester", ["Nose"], ["labeled-data/v/a.png"], np.ones((1, 1, 2)))
    write_labels(tmp_path / "t", tuples)
    assert read_labels(tmp_path / "t" / "CollectedData_tester.h5").index[0].endswith("v/a.png")
    frame.to_hdf(tmp_path / "table.h5", key="df_with_missing", mode="w", format="table")
    pd.testing.assert_frame_equal(read_labels(tmp_path / "table.h5"), frame)
    poses = poses_frame("DLC", ["a", "b"], np.random.default_rng(0).random((3, 2, 3)))
    pd.testing.assert_frame_equal(read_hdf_safely(write_poses(tmp_path / "p.h5", poses)), poses)


# ----------------------------------------------------------------------------- names as paths


@pytest.mark.parametrize(
    "name", ["../../x", "/tmp/x", "C:x", "..", ".", "", "a/b", "a\\..\\b", "a\0b", "x" * 300]
)
def test_safe_child_refuses_names_that_leave_the_folder(name: str, tmp_path: Path) -> None:
    with pytest.raises(PoseshiftError, match=r"^split name ") as exc:
        safe_child(tmp_path, name, "split name", suffix=".json")
    one_line_error(exc)


def test_safe_child_refuses_a_symlink_out(tmp_path: Path) -> None:
    (tmp_path / "inside").mkdir()
    (tmp_path / "inside" / "out").symlink_to(tmp_path)
    assert safe_child(tmp_path / "inside", "ok", "name") == tmp_path / "inside" / "ok"
    with pytest.raises(PoseshiftError, match="leads outside"):
        safe_child(tmp_path / "inside", "out/x", "name", subfolders=True)


def coco_with(tmp_path: Path, **image_fields) -> Path:
    make_project(tmp_path / "src", groups=1, frames=2)
    coco = to_coco(load_project(tmp_path / "src"))
    coco["images"][0].update(image_fields)
    (tmp_path / "c.json").write_text(json.dumps(coco))
    return tmp_path / "c.json"


@pytest.mark.parametrize(
    ("fields", "what"),
    [
        ({"group": "../../escaped"}, r"group '\.\./\.\./escaped' contains '\.\.'"),
        ({"group": "/tmp/escaped"}, r"group '/tmp/escaped' is an absolute path"),
        ({"group": "..\\..\\escaped"}, r"group '.*escaped' contains a backslash"),
        ({"file_name": "labeled-data/video0/.."}, r"file name '\.\.' contains '\.\.'"),
    ],
)
def test_coco_names_cannot_write_outside_the_project(
    fields: dict, what: str, tmp_path: Path
) -> None:
    coco = coco_with(tmp_path, **fields)
    out = tmp_path / "deep" / "er" / "new"
    with pytest.raises(PoseshiftError, match="image id 1 " + what):
        import_coco(coco, tmp_path / "src", out)
    assert not out.exists() and list(out.parent.iterdir()) == []
    assert not list(tmp_path.rglob("escaped")) and not list(Path("/tmp").glob("escaped"))


def test_coco_scorer_cannot_name_a_path(tmp_path: Path) -> None:
    coco = coco_with(tmp_path)
    data = json.loads(coco.read_text())
    data["info"]["scorer"] = "../../../evil"
    coco.write_text(json.dumps(data))
    with pytest.raises(PoseshiftError, match=r"info\.scorer"):
        import_coco(coco, tmp_path / "src", tmp_path / "new")
    assert not list(tmp_path.rglob("*evil*"))


def test_split_names_stay_in_splits(tmp_path: Path) -> None:
    make_project(tmp_path / "proj", groups=3, frames=2)
    project = str(tmp_path / "proj")
    created = CliRunner().invoke(
        app, ["split", project, "--name", "../../X", "--train-groups", "2"]
    )
    assert created.exit_code == 2 and "error: split name '../../X' contains '..'" in created.output
    assert not list(tmp_path.rglob("X.json"))
    (tmp_path / "X.json").write_text("{}")  # planted where ../../X would lead
    with pytest.raises(PoseshiftError, match=re.escape("split name '../../X'")):
        load_split(project, "../../X")


def test_train_split_option_is_checked_before_anything_is_written(tmp_path: Path) -> None:
    make_project(tmp_path / "proj", groups=2, frames=2)
    out = tmp_path / "run"
    args = ["train", str(tmp_path / "proj"), "--backbone", "mobilenetv2_035", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--split", "../../X", "--device", "cpu"])
    assert result.exit_code == 2 and "split name '../../X'" in result.output, result.output
    assert not out.exists()
