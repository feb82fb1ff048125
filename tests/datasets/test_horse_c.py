"""Horse-C corruptions: every corruption and severity, seeded bytes, the per-copy projects."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import make_project
from poseshift.cli import app
from poseshift.data.project import load_project
from poseshift.data.splits import group_split, save_split
from poseshift.datasets.horse_c.build import make_corruptions, parse_corruptions, parse_severities
from poseshift.datasets.horse_c.corruptions import CORRUPTIONS, SEVERITIES, corrupt_image
from poseshift.errors import PoseshiftError

SPLIT = "horse10-g2-s0"


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A 40x56 frame with edges, gradients and texture, so every corruption shows."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:40, 0:56]
    base = np.stack([x * 4, y * 5, (x + y) * 2], axis=-1) + rng.integers(0, 40, (40, 56, 3))
    base[10:30, 20:40] = [200, 60, 30]
    return np.clip(base, 0, 255).astype(np.uint8)


def damage(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


def test_every_corruption_and_severity(image: np.ndarray) -> None:
    assert len(CORRUPTIONS) == 15
    for name in CORRUPTIONS:
        for severity in SEVERITIES:
            first = corrupt_image(image, name, severity, np.random.default_rng(7))
            again = corrupt_image(image, name, severity, np.random.default_rng(7))
            assert first.shape == image.shape and first.dtype == np.uint8
            assert np.array_equal(first, again), (name, severity)
            assert damage(first, image) > 0.5, (name, severity)


@pytest.mark.parametrize(
    "name",
    ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "zoom_blur", "contrast"],
)
def test_higher_severity_does_more_damage(image: np.ndarray, name: str) -> None:
    low, high = (corrupt_image(image, name, s, np.random.default_rng(0)) for s in (1, 5))
    assert damage(high, image) > damage(low, image)


def test_bad_arguments(image: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(PoseshiftError, match="unknown corruption 'rain'"):
        corrupt_image(image, "rain", 1, rng)
    with pytest.raises(PoseshiftError, match="severity must be 1 to 5"):
        corrupt_image(image, "fog", 6, rng)
    with pytest.raises(PoseshiftError, match="RGB uint8"):
        corrupt_image(image[..., 0], "fog", 1, rng)
    assert parse_severities("1-5") == [1, 2, 3, 4, 5]
    assert parse_severities("4,2") == [2, 4]
    for bad in ("0-3", "x", ""):
        with pytest.raises(PoseshiftError, match="--severities"):
            parse_severities(bad)
    assert parse_corruptions("all") == list(CORRUPTIONS)
    assert parse_corruptions("fog, snow") == ["snow", "fog"]
    with pytest.raises(PoseshiftError, match="unknown corruption 'rain'"):
        parse_corruptions("fog,rain")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corrupt") / "proj"
    make_project(root, groups=4, frames=3)
    save_split(root, group_split(load_project(root), 2, shuffles=1, fractions=[0.5]))
    return root


def files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*.png"))
        if ".staging" not in str(p)
    }


def test_copies_are_projects_and_seeded(project: Path, tmp_path: Path) -> None:
    source = load_project(project)
    manifest = make_corruptions(
        project, SPLIT, tmp_path / "a", corruptions=["gaussian_noise", "frost"], severities=[1, 3]
    )
    assert manifest["done"] == {"gaussian_noise": [1, 3], "frost": [1, 3]}
    assert json.loads((tmp_path / "a" / "manifest.json").read_text()) == manifest
    tested = set(manifest["partitions"]["within"]) | set(manifest["partitions"]["ood"])
    assert len(manifest["partitions"]["ood"]) == 6 and len(tested) == 8
    for name in ("gaussian_noise", "frost"):
        for severity in (1, 3):
            copy = load_project(tmp_path / "a" / name / str(severity))
            assert copy.images == [x for x in source.images if x in tested]
            rows = source.indices_of(copy.images)
            assert np.array_equal(copy.keypoints, source.keypoints[rows], equal_nan=True)
            assert copy.bodyparts == source.bodyparts and copy.scorer == source.scorer
            assert not np.array_equal(copy.load_image(0), source.load_image(rows[0]))
    parallel = make_corruptions(
        project,
        SPLIT,
        tmp_path / "b",
        corruptions=["gaussian_noise", "frost"],
        severities=[1, 3],
        workers=2,
    )
    assert parallel["done"] == manifest["done"]
    assert files(tmp_path / "a") == files(tmp_path / "b")
    other = make_corruptions(
        project, SPLIT, tmp_path / "c", corruptions=["gaussian_noise"], severities=[1], seed=1
    )
    assert other["seed"] == 1
    assert files(tmp_path / "c") != {
        k: v for k, v in files(tmp_path / "a").items() if k.startswith("gaussian_noise/1/")
    }


def test_rerun_adds_only_missing_copies(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    make_corruptions(project, SPLIT, out, corruptions=["contrast"], severities=[2])
    marker = out / "contrast" / "2" / "config.yaml"
    stamp = marker.stat().st_mtime_ns
    manifest = make_corruptions(
        project, SPLIT, out, corruptions=["contrast", "fog"], severities=[2]
    )
    assert manifest["done"] == {"contrast": [2], "fog": [2]}
    assert marker.stat().st_mtime_ns == stamp
    assert not list(out.rglob(".staging-*"))
    with pytest.raises(PoseshiftError, match=r"other settings .* --force"):
        make_corruptions(project, SPLIT, out, corruptions=["contrast"], severities=[2], seed=5)
    forced = make_corruptions(
        project, SPLIT, out, corruptions=["contrast"], severities=[2], seed=5, force=True
    )
    assert forced["done"] == {"contrast": [2]} and not (out / "fog").exists()


def test_cli_corrupt(project: Path, tmp_path: Path) -> None:
    args = ["data", "corrupt", str(project), "--split", SPLIT, "--partitions", "ood"]
    result = CliRunner().invoke(
        app, [*args, "--corruptions", "pixelate", "--severities", "5", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "1 corruptions x 1 severities of 6 ood images" in " ".join(result.output.split())
    assert len(load_project(tmp_path / "pixelate" / "5")) == 6
    bad = CliRunner().invoke(app, [*args, "--corruptions", "rain", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "unknown corruption" in bad.output
