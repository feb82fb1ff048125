"""The command line: help, version, data info, splits and one-line errors."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from poseshift import __version__
from poseshift.cli import app

runner = CliRunner()


def test_help_and_version() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for group in ("data", "split", "train", "evaluate"):
        assert group in result.output
    assert runner.invoke(app, ["--version"]).output.strip() == f"poseshift {__version__}"


def test_data_info_openfield(openfield: Path) -> None:
    result = runner.invoke(app, ["data", "info", str(openfield)])
    assert result.exit_code == 0, result.output
    for text in ("scorer: Pranav", "frames: 116", "snout", "tailbase", "m4s1", "640x480 (116"):
        assert text in result.output


def test_errors_are_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "info", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: no config.yaml in")


def test_split_create_and_list(tiny_project: Path) -> None:
    result = runner.invoke(
        app,
        [
            "split",
            str(tiny_project),
            "--train-groups",
            "2",
            "--shuffles",
            "2",
            "--fractions",
            "0.5,0.75",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tiny_project / "splits" / "horse10-g2-s0.json").is_file()
    listed = runner.invoke(app, ["split", "list", str(tiny_project)])
    assert "horse10-g2-s0" in listed.output
    bad = runner.invoke(app, ["split", str(tiny_project), "--train-groups", "3"])
    assert bad.exit_code == 2 and "error: --train-groups must be between 1 and 2" in bad.stderr


def test_coco_commands(tiny_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "labels.json"
    assert runner.invoke(app, ["data", "export", str(tiny_project), str(out)]).exit_code == 0
    result = runner.invoke(
        app, ["data", "import", str(out), str(tmp_path / "new"), "--images", str(tiny_project)]
    )
    assert result.exit_code == 0, result.output
    assert "12 frames, 3 bodyparts, 3 groups" in " ".join(result.output.split())
    shutil.rmtree(tmp_path / "new")


def test_train_keeps_the_presets_execution_unless_told(
    tiny_project: Path, tmp_path: Path, monkeypatch
) -> None:
    """A preset's device and devices hold unless the command line names them."""
    import poseshift.train.trainer as trainer
    from poseshift.spec import preset_path

    seen = []

    def record(spec, out):
        seen.append(spec.execution)
        return trainer.RunResult(out, 0, finished=True, skipped=True)

    monkeypatch.setattr(trainer, "train", record)
    preset = tmp_path / "mine.yaml"
    preset.write_text(preset_path("fast").read_text() + "\ndevice: cpu\ndevices: 2\n")
    base = ["train", str(tiny_project), "--backbone", "mobilenetv2_035", "--out"]
    for out, extra in [("a", []), ("b", ["--devices", "1"])]:
        result = runner.invoke(app, [*base, str(tmp_path / out), "--preset", str(preset), *extra])
        assert result.exit_code == 0, result.output
    assert [(e.device, e.devices) for e in seen] == [("cpu", 2), ("cpu", 1)]
    bad = runner.invoke(app, [*base, str(tmp_path / "c"), "--crop", "0x24"])
    assert bad.exit_code == 2 and "at least 1" in bad.output


def test_train_canvas_and_crop_options(tiny_project: Path, tmp_path: Path, monkeypatch) -> None:
    """``--canvas`` picks the training canvas (an older fixed-canvas `paper` run can be
    resumed); ``--crop`` implies ``fixed``; contradictions and empty sizes are one-line errors."""
    import poseshift.train.trainer as trainer

    seen = []

    def record(spec, out):
        seen.append((spec.train.augment.canvas, spec.train.augment.crop))
        return trainer.RunResult(out, 0, finished=True, skipped=True)

    monkeypatch.setattr(trainer, "train", record)
    base = ["train", str(tiny_project), "--backbone", "mobilenetv2_035", "--out", str(tmp_path)]
    for extra in ([], ["--canvas", "fixed"], ["--crop", "64x48"], ["--preset", "fast"]):
        assert runner.invoke(app, [*base, *extra]).exit_code == 0
    assert seen == [("per_image", None), ("fixed", None), ("fixed", (64, 48)), ("fixed", None)]
    for extra, message in [
        (["--canvas", "per_image", "--crop", "64x48"], "augment.canvas must be fixed with a crop"),
        (["--canvas", "whole"], "augment.canvas: must be one of"),
        (["--crop", ""], "sizes are written WxH"),
    ]:
        bad = runner.invoke(app, [*base, *extra])
        assert bad.exit_code == 2 and message in " ".join(bad.output.split()), bad.output
