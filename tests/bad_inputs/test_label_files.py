"""Bad label files ``labeled-data/<video>/CollectedData_<scorer>.h5`` / ``.csv``.

What DeepLabCut leaves when it crashes (zero-byte or garbage .h5), what hand edits make
(header-only, ragged or non-numeric CSVs, wrong header levels, duplicate rows, infinite
coordinates) and what a hostile file tries (pickles that would run code, rows that point
outside the project): each is one PoseshiftError line naming the file, row or column.
Coordinates that are finite but outside their image are kept as unlabeled, with a warning.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import tables
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from refusals import cli_refuses, one_line_error

from conftest import make_project
from poseshift.data.hdf import read_hdf_safely
from poseshift.data.project import labels_frame, load_project, read_labels, write_labels
from poseshift.data.scale import read_official_scale
from poseshift.errors import PoseshiftError
from poseshift.predict.outputs import poses_frame, write_poses

OPENFIELD_LABELS = Path(
    "/work/shared/data/openfield/openfield-Pranav-2018-10-30/labeled-data/m4s1/"
    "CollectedData_Pranav.h5"
)
LABELS = "labeled-data/video0/CollectedData_tester"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """One video folder, 3 frames, bodyparts Nose/Eye/Tail (images 48x32)."""
    make_project(tmp_path / "proj", groups=1, frames=3)
    return tmp_path / "proj"


def csv_only(project: Path, text: str | None = None) -> Path:
    """Delete the .h5 so the .csv is read; optionally replace the .csv's text."""
    (project / f"{LABELS}.h5").unlink()
    csv = project / f"{LABELS}.csv"
    if text is not None:
        csv.write_text(text)
    return csv


def csv_lines(project: Path) -> list[str]:
    return (project / f"{LABELS}.csv").read_text().splitlines()


def refused(project: Path, match: str, names: Path) -> str:
    with pytest.raises(PoseshiftError, match=match) as excinfo:
        load_project(project)
    message = one_line_error(excinfo)
    assert str(names) in message
    return message


# ----------------------------------------------------------------------------- CSV files


def test_header_only_csv(project: Path) -> None:
    csv = csv_only(project, "\n".join(csv_lines(project)[:3]) + "\n")
    refused(project, "has a header but no rows", csv)


def test_zero_byte_csv(project: Path) -> None:
    csv = csv_only(project, "")
    refused(project, "is empty: re-export it", csv)


def test_non_numeric_coordinate_names_line_and_column(project: Path) -> None:
    lines = csv_lines(project)
    cells = lines[4].split(",")
    cells[5] = "12,5"  # a decimal comma, quoted by the editor
    lines[4] = ",".join(cells[:5]) + ',"12,5",' + ",".join(cells[6:])
    csv = csv_only(project, "\n".join(lines) + "\n")
    refused(project, r"line 5 column Eye/x is '12,5', not a number", csv)


@pytest.mark.parametrize("cut", [5, 11])
def test_ragged_csv_names_the_line(project: Path, cut: int) -> None:
    lines = csv_lines(project)
    cells = (lines[3] + ",1,2").split(",")
    lines[3] = ",".join(cells[:cut])
    csv = csv_only(project, "\n".join(lines) + "\n")
    refused(project, f"line 4 has {cut} cells, the header 9", csv)


def test_wrong_header_rows(project: Path) -> None:
    lines = csv_lines(project)
    csv = csv_only(project, "\n".join([lines[0], lines[2], *lines[3:]]) + "\n")
    refused(project, r"wrong header.*found \['scorer', 'coords', 'labeled-data'\]", csv)
    multi = [lines[0], "individuals,,," + ",".join(["a"] * 6), *lines[1:]]
    csv.write_text("\n".join(multi) + "\n")
    refused(project, "multi-animal label files .* are not supported yet", csv)


def test_binary_garbage_csv(project: Path) -> None:
    csv = csv_only(project)
    csv.write_bytes(b"\xff\xfe\x00garbage\x00")
    refused(project, "not a readable CSV", csv)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    content=st.binary(max_size=400) | st.text(alphabet='scorebdypatx,0123456789.\n"-', max_size=300)
)
def test_random_bytes_as_a_label_file_are_always_a_one_line_error(
    tmp_path: Path, content: bytes | str
) -> None:
    data = content.encode() if isinstance(content, str) else content
    for suffix in (".csv", ".h5"):
        path = tmp_path / f"CollectedData_x{suffix}"
        path.write_bytes(data)
        with pytest.raises(PoseshiftError) as excinfo:
            read_labels(path)
        assert str(path) in one_line_error(excinfo)


# ----------------------------------------------------------------------------- columns and rows


def rewrite_h5(project: Path, change, fmt: str = "fixed") -> Path:
    path = project / f"{LABELS}.h5"
    frame = change(pd.read_hdf(path))
    frame.to_hdf(path, key="df_with_missing", mode="w", format=fmt)
    return path


def test_text_in_an_h5_column(project: Path) -> None:
    def text(frame: pd.DataFrame) -> pd.DataFrame:
        frame.index = ["/".join(row) for row in frame.index]  # table format: a flat index
        frame[("tester", "Eye", "y")] = ["1.0", "n/a", "x"]  # strings, stored without pickle
        return frame

    path = rewrite_h5(project, text, fmt="table")
    refused(project, r"column Eye/y holds \w+ values \(e.g. in row .*img001.png'\)", path)


@pytest.mark.parametrize("levels", [2, 4])
def test_wrong_number_of_column_levels(project: Path, levels: int) -> None:
    def relevel(frame: pd.DataFrame) -> pd.DataFrame:
        tuples = [(s, "animal1", b, c) if levels == 4 else (b, c) for s, b, c in frame.columns]
        frame.columns = pd.MultiIndex.from_tuples(tuples)
        return frame

    path = rewrite_h5(project, relevel)
    refused(project, f"expected 3 column levels .* found {levels}", path)


def test_a_bodypart_without_y(project: Path) -> None:
    path = rewrite_h5(project, lambda f: f.drop(columns=[("tester", "Tail", "y")]))
    refused(project, r"bodypart 'Tail' has coords \['x'\]; each bodypart needs", path)


def test_a_column_twice(project: Path) -> None:
    lines = csv_lines(project)
    lines = [line + "," + line.split(",")[3] for line in lines]
    csv = csv_only(project, "\n".join(lines) + "\n")
    refused(project, r"column Nose/x appears twice", csv)


def test_bodyparts_differ_from_config(project: Path) -> None:
    config = yaml.safe_load((project / "config.yaml").read_text())
    config["bodyparts"] = ["Nose", "Eye", "Tailbase"]
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    refused(project, r"bodyparts differ from config.yaml.*'Tail'.*'Tailbase'", project / LABELS)


def test_duplicate_image_rows(project: Path) -> None:
    path = rewrite_h5(project, lambda f: pd.concat([f, f.iloc[:1]]))
    refused(project, r"image 'labeled-data/video0/img000.png' appears in more than one row", path)


def test_an_image_labeled_in_two_files(tmp_path: Path) -> None:
    make_project(tmp_path / "p", groups=2, frames=2)
    path = tmp_path / "p" / "labeled-data/video1/CollectedData_tester.h5"
    frame = pd.read_hdf(path)
    other = pd.read_hdf(tmp_path / "p" / f"{LABELS}.h5")
    pd.concat([frame, other.iloc[:1]]).to_hdf(path, key="df_with_missing", mode="w")
    refused(tmp_path / "p", r"img000.png' is labeled in both .*video0.* and .*video1", path)


@pytest.mark.parametrize("value", ["inf", "-inf"])
def test_infinite_coordinates_are_refused(project: Path, value: str) -> None:
    lines = csv_lines(project)
    cells = lines[5].split(",")
    cells[8] = value
    lines[5] = ",".join(cells)
    csv = csv_only(project, "\n".join(lines) + "\n")
    refused(
        project, r"row 'labeled-data/video0/img002.png' column Tail/y is infinite; refused", csv
    )


def test_far_outside_the_image_becomes_unlabeled_with_a_warning(project: Path) -> None:
    path = rewrite_h5(project, lambda f: f.replace(f.iloc[1, 0], -1e9))
    with pytest.warns(UserWarning, match=r"1 label\(s\) lie outside .* Nose in .*img001.png"):
        dataset = load_project(project)
    assert np.isnan(dataset.keypoints[1, 0]).all() and not np.isnan(dataset.keypoints[1, 1]).any()
    assert path.is_file()


def test_image_named_by_a_row_is_missing(project: Path) -> None:
    (project / "labeled-data/video0/img001.png").unlink()
    message = refused(
        project,
        r"row 'labeled-data/video0/img001.png' names an image missing",
        project / f"{LABELS}.h5",
    )
    assert "restore the image or remove its row" in message


@pytest.mark.parametrize("row", ["../../../etc/passwd", "/etc/passwd", "labeled-data/../x.png"])
def test_rows_cannot_point_outside_the_project(project: Path, row: str) -> None:
    frame = read_labels(project / f"{LABELS}.h5")
    frame.index = [row, *frame.index[1:]]
    frame.to_hdf(project / f"{LABELS}.h5", key="df_with_missing", mode="w")
    refused(project, r"is not a path inside the project", project / f"{LABELS}.h5")


def test_data_info_refuses_a_ragged_csv(project: Path) -> None:
    lines = csv_lines(project)
    csv = csv_only(project, "\n".join([*lines, "labeled-data,video0,img009.png,1"]) + "\n")
    assert "line 7 has 4 cells" in cli_refuses(["data", "info", project], csv)


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
    line = cli_refuses(["data", "info", tmp_path / "proj"], "CollectedData_tester.h5")
    assert "holds pickled Python objects" in line
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
