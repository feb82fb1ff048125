"""Reading and writing DeepLabCut projects (bad inputs: tests/bad_inputs/)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_project
from poseshift.data.project import (
    labels_frame,
    labels_to_array,
    load_project,
    read_labels,
    write_labels,
)
from poseshift.errors import PoseshiftError


def test_openfield_reads_exactly(openfield: Path) -> None:
    dataset = load_project(openfield)
    assert len(dataset) == 116
    assert dataset.scorer == "Pranav"
    assert dataset.bodyparts == ["snout", "leftear", "rightear", "tailbase"]
    assert dataset.group_names == ["m4s1"]
    assert dataset.images[0] == "labeled-data/m4s1/img0000.png"
    assert dataset.keypoints.shape == (116, 4, 2) and dataset.keypoints.dtype == np.float32
    assert not np.isnan(dataset.keypoints).any()
    assert set(map(tuple, dataset.image_sizes.tolist())) == {(640, 480)}
    # Same values as pandas reads from the h5 (README: x in [10.248, 235.709]).
    assert dataset.keypoints[..., 0].min() == pytest.approx(10.248, abs=1e-3)
    assert dataset.keypoints[..., 1].max() == pytest.approx(460.657, abs=1e-3)
    assert dataset.config["project_path"] == str(openfield.resolve())
    summary = dataset.summary()
    assert summary["frames_per_group"] == {"m4s1": 116}
    assert summary["labeled_fraction"]["snout"] == 1.0


def test_openfield_csv_equals_h5(openfield: Path) -> None:
    folder = openfield / "labeled-data" / "m4s1"
    h5 = read_labels(folder / "CollectedData_Pranav.h5")
    csv = read_labels(folder / "CollectedData_Pranav.csv")
    assert list(h5.index) == list(csv.index)
    np.testing.assert_allclose(h5.to_numpy(), csv.to_numpy())


@pytest.mark.parametrize("style", ["tuple", "path"])
def test_both_index_styles_read_back(tmp_path: Path, style: str) -> None:
    written = make_project(tmp_path / "p", index_style=style)
    loaded = load_project(tmp_path / "p")
    assert loaded.images == written.images
    np.testing.assert_array_equal(loaded.keypoints, written.keypoints)
    assert loaded.groups == ["video0"] * 4 + ["video1"] * 4 + ["video2"] * 4
    assert loaded.index_style == style  # predictions.h5 gets the same row index


def test_csv_used_when_no_h5(tiny_project: Path) -> None:
    for h5 in tiny_project.glob("labeled-data/*/*.h5"):
        h5.unlink()
    assert len(load_project(tiny_project)) == 12


def test_written_file_is_what_deeplabcut_expects(tiny_project: Path) -> None:
    path = tiny_project / "labeled-data" / "video0" / "CollectedData_tester.h5"
    frame = pd.read_hdf(path, key="df_with_missing")
    assert frame.columns.names == ["scorer", "bodyparts", "coords"]
    assert list(frame.columns.get_level_values("coords")[:2]) == ["x", "y"]
    assert frame.index[0] == ("labeled-data", "video0", "img000.png")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(
        st.one_of(st.none(), st.floats(0, 5000, allow_nan=False, width=32)),
        min_size=6,
        max_size=6,
    ),
    rows=st.integers(1, 4),
    style=st.sampled_from(["tuple", "path"]),
)
def test_h5_and_csv_round_trip(tmp_path: Path, values, rows: int, style: str) -> None:
    keypoints = np.array([np.nan if v is None else v for v in values] * rows, np.float32)
    keypoints = keypoints.reshape(rows, 3, 2)
    images = [f"labeled-data/v/img{i}.png" for i in range(rows)]
    frame = labels_frame("me", ["a", "b", "c"], images, keypoints, style)
    h5, csv = write_labels(tmp_path / style, frame)
    expected = keypoints.copy()
    expected[np.isnan(keypoints).any(axis=-1)] = np.nan  # x without y is unlabeled (warned)
    for path in (h5, csv):
        back = read_labels(path)
        assert list(back.index) == images
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            points = labels_to_array(back, ["a", "b", "c"], path)
        np.testing.assert_array_equal(points, expected)


def test_frames_without_labels_warn(tiny_project: Path) -> None:
    path = tiny_project / "labeled-data" / "video1" / "CollectedData_tester.h5"
    frame = pd.read_hdf(path)
    frame.iloc[2] = np.nan
    frame.to_hdf(path, key="df_with_missing", mode="w")
    with pytest.warns(
        UserWarning, match=r"1 frame\(s\) have no labels, e.g. labeled-data/video1/img002.png"
    ):
        dataset = load_project(tiny_project)
    assert len(dataset) == 12


def test_group_map(tiny_project: Path, tmp_path: Path) -> None:
    from poseshift.data.project import read_group_map

    mapping = tmp_path / "groups.csv"
    mapping.write_text("video,group\nvideo0,horseA\nvideo1,horseA\n")
    dataset = load_project(tiny_project, read_group_map(mapping))
    assert dataset.group_names == ["horseA", "video2"]
    mapping.write_text("name,group\nvideo0,horseA\n")
    with pytest.raises(PoseshiftError, match="needs a 'group' column and a 'video' or 'image'"):
        read_group_map(mapping)


def test_loading_does_not_write(openfield: Path, tmp_path: Path) -> None:
    copy = tmp_path / "of"
    shutil.copytree(openfield, copy)
    before = sorted(p.name for p in copy.rglob("*"))
    load_project(copy)
    assert sorted(p.name for p in copy.rglob("*")) == before


def test_a_project_deeplabcut_trained_reads_as_before(tiny_project: Path) -> None:
    """What DeepLabCut 2 and 3 leave in a project they trained (model, training-set and
    evaluation folders, check_labels' *_labeled images, DeepLabCut 3's config keys) changes
    nothing; the interop tier checks the same on a folder DeepLabCut itself wrote."""
    before = load_project(tiny_project)
    shuffle = "tinyDec3-trainset95shuffle1"
    for folder in (
        f"dlc-models/iteration-0/{shuffle}/train",
        f"dlc-models-pytorch/iteration-0/{shuffle}/train",
        "training-datasets/iteration-0/UnaugmentedDataSet_tinyDec3",
        f"evaluation-results/iteration-0/{shuffle}",
        f"evaluation-results-pytorch/iteration-0/{shuffle}",
    ):
        (tiny_project / folder).mkdir(parents=True)
    train = tiny_project / f"dlc-models-pytorch/iteration-0/{shuffle}/train"
    (train / "pytorch_config.yaml").write_text("net_type: resnet_50\nmethod: bu\n")
    (train / "snapshot-010.pt").write_bytes(b"\0")
    labeled = tiny_project / "labeled-data" / "video0_labeled"
    labeled.mkdir()
    shutil.copy(tiny_project / "labeled-data/video0/img000.png", labeled / "img000.png")
    config = tiny_project / "config.yaml"
    config.write_text(
        config.read_text() + "engine: pytorch\ndetector_snapshotindex: -1\n"
        "SuperAnimalConversionTables:\n  superanimal_topviewmouse:\n    Nose: nose\n"
    )
    after = load_project(tiny_project)
    assert after.images == before.images
    np.testing.assert_array_equal(after.keypoints, before.keypoints)
