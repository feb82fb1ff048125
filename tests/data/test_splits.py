"""Group-aware splits: disjoint, nested, deterministic; the official Horse-10 files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import HORSE10, make_project
from poseshift.data.project import PoseDataset
from poseshift.data.splits import (
    OFFICIAL_COLUMNS,
    group_split,
    list_splits,
    load_split,
    official_files,
    official_split,
    random_split,
    save_split,
)
from poseshift.errors import PoseshiftError

FRACTIONS = (0.05, 0.1, 0.2, 0.5, 0.9)


def fake_dataset(groups: dict[str, int]) -> PoseDataset:
    """Labels without images: splits only need names and groups."""
    images = [f"labeled-data/{g}/{i:04d}.png" for g, n in groups.items() for i in range(n)]
    return PoseDataset(
        root=Path("/nonexistent"),
        scorer="x",
        bodyparts=["Nose", "Eye"],
        images=images,
        keypoints=np.zeros((len(images), 2, 2), np.float32),
        groups=[name.split("/")[1] for name in images],
        image_sizes=np.tile([288, 162], (len(images), 1)),
    )


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 30), min_size=2, max_size=12),
    seed=st.integers(0, 1000),
    data=st.data(),
)
def test_group_split_properties(sizes: list[int], seed: int, data) -> None:
    dataset = fake_dataset({f"g{i}": n for i, n in enumerate(sizes)})
    n_train = data.draw(st.integers(1, len(sizes) - 1))
    split = group_split(dataset, n_train, shuffles=2, fractions=FRACTIONS, seed=seed)
    group = dict(zip(dataset.images, dataset.groups, strict=True))
    for shuffle in split.shuffles:
        assert len(shuffle.train_groups) == n_train
        assert not set(shuffle.train_groups) & set(shuffle.ood_groups)
        previous: set[str] = set()
        for f in FRACTIONS:
            parts = shuffle.partitions(f)
            train, within, ood = (set(parts[p]) for p in ("train", "within", "ood"))
            assert not train & within and not train & ood and not within & ood
            assert train | within | ood == set(dataset.images)
            assert {group[x] for x in train} == set(shuffle.train_groups)  # every group trains
            assert {group[x] for x in ood} == set(shuffle.ood_groups)
            assert previous <= train  # nested fractions
            previous = train
    again = group_split(dataset, n_train, shuffles=2, fractions=FRACTIONS, seed=seed)
    assert again == split


def test_fraction_sizes_follow_the_fraction() -> None:
    dataset = fake_dataset({f"h{i}": 100 for i in range(30)})
    shuffle = group_split(dataset, 10, shuffles=1, seed=3).shuffle(1)
    assert [len(shuffle.train[k]) for k in ("0.05", "0.1", "0.2", "0.5", "0.9")] == [
        50,
        100,
        200,
        500,
        900,
    ]
    assert len(shuffle.ood) == 2000


def test_shuffles_differ_and_seeds_matter() -> None:
    dataset = fake_dataset({f"h{i}": 5 for i in range(30)})
    split = group_split(dataset, 10, shuffles=3, seed=0)
    assert len({tuple(s.train_groups) for s in split.shuffles}) == 3
    assert (
        group_split(dataset, 10, seed=1).shuffles[0].train_groups != split.shuffles[0].train_groups
    )


def test_random_split_keeps_a_test_set() -> None:
    dataset = fake_dataset({"only": 116})
    shuffle = random_split(dataset, fractions=[0.95]).shuffle(1)
    assert (len(shuffle.train["0.95"]), len(shuffle.within["0.95"]), len(shuffle.ood)) == (
        110,
        6,
        0,
    )


def test_bad_parameters() -> None:
    dataset = fake_dataset({"a": 3, "b": 3})
    with pytest.raises(PoseshiftError, match="--train-groups must be between 1 and 1"):
        group_split(dataset, 2)
    with pytest.raises(PoseshiftError, match="fractions must lie strictly between 0 and 1"):
        group_split(dataset, 1, fractions=[0.5, 1.0])


def test_save_list_load(tiny_project: Path) -> None:
    from poseshift.data.project import load_project

    dataset = load_project(tiny_project)
    split = group_split(dataset, 2, shuffles=1, fractions=[0.5])
    save_split(tiny_project, split)
    assert list_splits(tiny_project) == [split.name]
    assert load_split(tiny_project, split.name) == split
    save_split(tiny_project, split)  # identical: fine
    other = group_split(dataset, 2, shuffles=1, fractions=[0.5], seed=5, name=split.name)
    with pytest.raises(PoseshiftError, match="exists with different content"):
        save_split(tiny_project, other)
    with pytest.raises(PoseshiftError, match=r"no split 'nope' .*available: \['horse10-g2-s0'\]"):
        load_split(tiny_project, "nope")


# ----------------------------------------------------------------------------- Horse-10


@pytest.fixture(scope="module")
def horse30_paths() -> PoseDataset:
    """A fabricated Horse-30 project: the 8,114 real image paths, no pixels."""
    if not (HORSE10 / "Horsescale.h5").exists():
        pytest.skip("../shared/data/horse10 is not available")
    paths = pd.read_hdf(HORSE10 / "Horsescale.h5").index.tolist()
    groups = {}
    for path in paths:
        groups.setdefault(path.split("/")[1], 0)
        groups[path.split("/")[1]] += 1
    dataset = fake_dataset(groups)
    dataset.images = paths
    dataset.groups = [p.split("/")[1] for p in paths]
    return dataset


@pytest.mark.parametrize(
    ("shuffle", "train", "within", "ood"),
    [(1, 1470, 1459, 5185), (2, 1564, 1432, 5118), (3, 1386, 1329, 5399)],
)
def test_official_split_reproduces_the_paper(horse30_paths, shuffle, train, within, ood) -> None:
    files = sorted(HORSE10.glob("TrainTestInfo_shuffle*.csv"))
    split = official_split(horse30_paths, files, FRACTIONS)
    s = split.shuffle(shuffle)
    parts = s.partitions(0.5)
    assert (len(parts["train"]), len(parts["within"]), len(parts["ood"])) == (train, within, ood)
    assert len(s.train_groups) == 10 and len(s.ood_groups) == 20
    official = pd.read_csv(files[shuffle - 1], index_col=0)
    assert set(parts["train"]) == set(official["trainIndices"].dropna())
    previous: set[str] = set()
    for f in FRACTIONS:
        current = set(s.partitions(f)["train"])
        assert previous <= current
        assert {p.split("/")[1] for p in current} <= set(s.train_groups)
        previous = current
    assert len(s.partitions(0.05)["train"]) == round(0.05 * (train + within))


def test_official_split_refuses_another_project() -> None:
    files = sorted(HORSE10.glob("TrainTestInfo_shuffle*.csv"))
    if not files:
        pytest.skip("../shared/data/horse10 is not available")
    with pytest.raises(PoseshiftError, match=r"are not in project .*Horse-30 project"):
        official_split(fake_dataset({"a": 3}), files[:1])


def test_make_project_split_end_to_end(tmp_path: Path) -> None:
    make_project(tmp_path / "p", groups=5, frames=4)
    from poseshift.data.project import load_project

    split = group_split(load_project(tmp_path / "p"), 3, shuffles=3, fractions=[0.5])
    assert all(len(s.ood) == 8 for s in split.shuffles)


def official_file(path: Path, train: list[str], within: list[str], ood: list[str]) -> Path:
    """A TrainTestInfo_shuffleK.csv as the Horse-10 repository has them (NaN padding)."""
    columns = dict(zip(OFFICIAL_COLUMNS, (train, within, ood), strict=True))
    n = max(map(len, columns.values()))
    pd.DataFrame({k: v + [None] * (n - len(v)) for k, v in columns.items()}).to_csv(path)
    return path


@pytest.mark.parametrize(
    ("ood_extra", "match"),
    [
        ("train", r"'labeled-data/a/0000.png' is listed in trainIndices and in testIndices_acr"),
        ("ood", r"'labeled-data/c/0000.png' is listed twice in testIndices_acrossDomain"),
    ],
)
def test_official_file_listing_an_image_twice_is_refused(
    tmp_path: Path, ood_extra: str, match: str
) -> None:
    dataset = fake_dataset({"a": 4, "b": 4, "c": 2})
    v = {g: [n for n in dataset.images if f"/{g}/" in n] for g in "abc"}
    extra = v["a"][0] if ood_extra == "train" else v["c"][0]
    path = official_file(
        tmp_path / "TrainTestInfo_shuffle1.csv",
        v["a"][:2] + v["b"][:2],
        v["a"][2:] + v["b"][2:],
        [*v["c"], extra],
    )
    with pytest.raises(PoseshiftError, match=match) as excinfo:
        official_split(dataset, [path], fractions=[0.5])
    assert str(path) in str(excinfo.value)


def test_official_shuffles_keep_the_numbers_of_their_files(tmp_path: Path) -> None:
    """A folder holding shuffles 2, 3 and 10: numbered by file name, 10 after 3."""
    make_project(tmp_path / "p", groups=3, frames=4)
    from poseshift.data.project import load_project

    dataset = load_project(tmp_path / "p")
    v = [[n for n in dataset.images if f"/video{g}/" in n] for g in range(3)]
    files = tmp_path / "files"
    files.mkdir()
    for number, trained in ((2, 1), (3, 2), (10, 0)):
        ood = [n for g in range(3) if g != trained for n in v[g]]
        name = f"TrainTestInfo_shuffle{number}.csv"
        official_file(files / name, v[trained][:2], v[trained][2:], ood)
    (files / "TrainTestInfo_shuffle1 (copy).csv").write_text("not an official file")
    assert [p.name for p in official_files(files, 2)] == [
        "TrainTestInfo_shuffle2.csv",
        "TrainTestInfo_shuffle3.csv",
    ]
    from typer.testing import CliRunner

    from poseshift.cli import app

    args = ["split", "create", str(tmp_path / "p"), "--from-files", "--files-dir", str(files)]
    result = CliRunner().invoke(app, [*args, "--fractions", "0.5", "--name", "off"])
    assert result.exit_code == 0, result.output
    split = load_split(tmp_path / "p", "off")
    trained = {s.index: s.train_groups for s in split.shuffles}
    assert trained == {2: ["video1"], 3: ["video2"], 10: ["video0"]}


def test_unreadable_official_file_and_split_json_are_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "TrainTestInfo_shuffle1.csv"
    path.write_bytes(b"\xff\xfe\x00\x01binary")
    with pytest.raises(PoseshiftError, match="cannot be read"):
        official_split(fake_dataset({"a": 2}), [path])
    project = tmp_path / "p"
    (project / "splits").mkdir(parents=True)
    (project / "splits/bad.json").write_bytes(b"\xff\xfe\x00\x01binary")
    with pytest.raises(PoseshiftError, match=r"splits/bad.json is damaged"):
        load_split(project, "bad")
    split = random_split(fake_dataset({"a": 3}), name="bad")
    with pytest.raises(PoseshiftError, match=r"splits/bad.json is damaged.*--force"):
        save_split(project, split)
    assert save_split(project, split, force=True) == project / "splits/bad.json"
