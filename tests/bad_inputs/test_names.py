"""Names from files and options that become paths (split names, --split) stay inside.

COCO group, file and scorer names are in test_coco.py, label-file rows in test_label_files.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from refusals import one_line_error
from typer.testing import CliRunner

from conftest import make_project
from poseshift.cli import app
from poseshift.data.splits import load_split
from poseshift.errors import PoseshiftError
from poseshift.fsutil import safe_child


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
