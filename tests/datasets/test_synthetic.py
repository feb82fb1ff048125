"""The synthetic benchmark: a real DeepLabCut project, deterministic, with dialable domain shift."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from poseshift.cli import app
from poseshift.data.project import load_project
from poseshift.datasets.synthetic.generate import generate, parse_size, render_individual
from poseshift.datasets.synthetic.horse import BODYPARTS, OFF_SIDE, SKELETON, horse_points
from poseshift.datasets.synthetic.look import STYLE, make_look
from poseshift.errors import PoseshiftError

SIZE = (96, 64)


def tiny(root: Path, seed: int = 0, individuals: int = 4, **options):
    return generate(
        root, individuals=individuals, frames_per_individual=3, size=SIZE, seed=seed, **options
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "horses"
    tiny(root)
    return root


def test_project_loads_like_any_deeplabcut_project(project: Path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = load_project(project)
    assert not [w for w in caught if "outside" in str(w.message)]
    assert dataset.bodyparts == BODYPARTS and len(BODYPARTS) == 22
    assert dataset.group_names == ["horse000", "horse001", "horse002", "horse003"]
    assert dataset.summary()["frames_per_group"] == dict.fromkeys(dataset.group_names, 3)
    assert dataset.skeleton == SKELETON
    assert (dataset.image_sizes == SIZE).all()
    assert dataset.images[0] == "labeled-data/horse000/img0000.png"
    assert (project / "labeled-data/horse000/CollectedData_synth.h5").is_file()
    assert (project / "labeled-data/horse000/CollectedData_synth.csv").is_file()
    assert not list(project.parent.glob(".horses*")), "staging folder left behind"


def test_keypoints_are_inside_the_image_or_nan():
    width, height = SIZE
    partial = 0
    for index in range(6):
        for _, points in render_individual(0, index, 8, SIZE, 1.0):
            labeled = np.isfinite(points).all(axis=1)
            assert (np.isnan(points[~labeled]).all()) and labeled.sum() > 0
            x, y = points[labeled].T
            assert (x >= 0).all() and (x <= width - 1).all()
            assert (y >= 0).all() and (y <= height - 1).all()
            partial += 0 < labeled.sum() < len(BODYPARTS)
    assert partial > 0, "the horse never enters or leaves the frame"


def test_horse_stands_on_the_ground_facing_right():
    look = make_look(np.full(len(STYLE), 0.5))
    for phase in np.linspace(0, 1, 9):
        p = horse_points(look, phase, head_lift=0.0, amp=0.3)
        feet = [p[n][1] for n in ("Nearfrontfoot", "Nearhindfoot")]
        feet += [p[n][1] - OFF_SIDE[1] for n in ("Offfrontfoot", "Offhindfoot")]
        assert min(feet) == pytest.approx(0)
        assert p["Nose"][0] > p["Wither"][0] > p["Hip"][0] > p["Ischium"][0]
        assert p["Wither"][1] > p["Elbow"][1] > p["Nearknee"][1] > p["Nearfrontfoot"][1]


def test_same_seed_gives_the_same_bytes(tmp_path: Path, project: Path):
    again = tiny(tmp_path / "again")
    other = tiny(tmp_path / "other", seed=1)
    names = sorted(p.relative_to(project) for p in project.rglob("*.png"))
    assert names == sorted(p.relative_to(again.root) for p in again.root.rglob("*.png"))
    for name in names:
        assert (project / name).read_bytes() == (again.root / name).read_bytes()
    csv = "labeled-data/horse001/CollectedData_synth.csv"
    assert (project / csv).read_bytes() == (again.root / csv).read_bytes()
    np.testing.assert_array_equal(load_project(project).keypoints, again.keypoints)
    image = "labeled-data/horse000/img0000.png"
    assert (project / image).read_bytes() != (other.root / image).read_bytes()
    assert not np.array_equal(other.keypoints, again.keypoints, equal_nan=True)


def test_an_individual_does_not_depend_on_how_many_are_generated(tmp_path: Path, project: Path):
    fewer = tiny(tmp_path / "fewer", individuals=2)
    name = "labeled-data/horse001/img0002.png"
    assert (fewer.root / name).read_bytes() == (project / name).read_bytes()


def between_within_ratio(shift: float) -> float:
    """Variance of per-individual mean colour across individuals / within an individual."""
    means = np.array(
        [
            [
                image.reshape(-1, 3).mean(axis=0)
                for image, _ in render_individual(0, i, 4, SIZE, shift)
            ]
            for i in range(6)
        ]
    )  # (individuals, frames, 3)
    return float(means.mean(axis=1).var(axis=0).sum() / means.var(axis=1).mean(axis=0).sum())


def test_domain_shift_moves_appearance_variance_between_individuals():
    shifted, shared = between_within_ratio(1.0), between_within_ratio(0.0)
    assert shifted > 3.0 > 1.0 > shared


def test_refuses_a_non_empty_folder_unless_forced(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(PoseshiftError, match="not empty"):
        tiny(out, individuals=1)
    assert (out / "keep.txt").is_file()
    tiny(out, individuals=1, force=True)
    assert not (out / "keep.txt").exists() and (out / "config.yaml").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failure_leaves_nothing(tmp_path: Path, monkeypatch):
    monkeypatch.setattr("poseshift.datasets.synthetic.generate.cv2.imwrite", lambda *args: False)
    with pytest.raises(PoseshiftError, match="could not write"):
        tiny(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"domain_shift": 1.5}, "domain-shift"),
        ({"individuals": 0}, "at least 1"),
        ({"size": (16, 16)}, "too small"),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path: Path, options: dict, message: str):
    arguments = {"individuals": 1, "frames_per_individual": 1, "size": SIZE} | options
    with pytest.raises(PoseshiftError, match=message):
        generate(tmp_path / "out", **arguments)
    assert list(tmp_path.iterdir()) == []


def test_parse_size():
    assert parse_size("288x162") == (288, 162)
    for bad in ("288", "axb", "1x2x3"):
        with pytest.raises(PoseshiftError, match="WIDTHxHEIGHT"):
            parse_size(bad)


def test_cli_synth(tmp_path: Path):
    out = tmp_path / "cli"
    command = ["data", "synth", str(out), "--individuals", "2", "--frames-per-individual", "2"]
    command += ["--size", "96x64", "--seed", "3", "--domain-shift", "0.5"]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    assert "4 frames of 2 individuals" in " ".join(result.output.split())
    assert len(load_project(out)) == 4
    again = CliRunner().invoke(app, command)
    assert again.exit_code == 2
    assert again.stderr.startswith("error: ") and again.stderr.strip().count("\n") == 0
    assert "--force" in again.stderr
    assert CliRunner().invoke(app, [*command, "--force"]).exit_code == 0
