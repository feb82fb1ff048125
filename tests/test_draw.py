"""Drawing: contact sheets (grid size, labels where they belong, the CLI) and colours."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from poseshift.cli import app
from poseshift.data.project import load_project
from poseshift.datasets.synthetic.generate import generate
from poseshift.draw import bodypart_colours, contact_sheet, draw_labels, write_contact_sheet
from poseshift.errors import PoseshiftError


@pytest.fixture(scope="module")
def horses(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("show") / "horses"
    generate(root, individuals=3, frames_per_individual=2, size=(96, 64), seed=0)
    return root


def test_sheet_size_follows_tiles_and_columns(horses: Path):
    dataset = load_project(horses)
    sheet = contact_sheet(dataset, n=5, columns=2, tile_width=144)
    assert sheet.shape == (3 * 96, 2 * 144, 3) and sheet.dtype == np.uint8
    everything = contact_sheet(dataset, n=100)  # more than there are frames: all 6
    assert everything.shape == (2 * 213, 4 * 320, 3)


def test_keypoints_get_their_bodypart_colour(tiny_project: Path):
    dataset = load_project(tiny_project)
    image = dataset.load_image(0)
    tile = draw_labels(image, dataset, 0, width=image.shape[1] * 4)
    plain = cv2.resize(image, (tile.shape[1], tile.shape[0]), interpolation=cv2.INTER_LINEAR)
    colours = bodypart_colours(len(dataset.bodyparts), "rainbow")
    for (x, y), colour in zip(dataset.keypoints[0] * 4, colours, strict=True):
        assert (tile[round(y), round(x)] == colour).all()
    assert not np.array_equal(tile, plain)


def test_colours_come_from_the_colormap():
    jet = bodypart_colours(3, "jet")
    assert jet.shape == (3, 3) and not np.array_equal(jet, bodypart_colours(3, "viridis"))
    np.testing.assert_array_equal(bodypart_colours(3, "no-such-map"), bodypart_colours(3))


def test_write_contact_sheet(horses: Path, tmp_path: Path):
    path = write_contact_sheet(load_project(horses), tmp_path / "sheet.png", n=3, seed=1)
    image = cv2.imread(str(path))
    assert image.shape == (213, 3 * 320, 3)
    with pytest.raises(PoseshiftError, match=r"\.png"):
        write_contact_sheet(load_project(horses), tmp_path / "sheet.jpg")
    with pytest.raises(PoseshiftError, match="at least 1"):
        contact_sheet(load_project(horses), n=0)


def test_cli_show(horses: Path, tmp_path: Path, monkeypatch):
    out = tmp_path / "s.png"
    result = CliRunner().invoke(app, ["data", "show", str(horses), "--n", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(out)).shape == (213, 2 * 320, 3)
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(app, ["data", "show", str(horses), "--seed", "2"]).exit_code == 0
    assert (tmp_path / "horses_sheet.png").is_file()
