"""``poseshift models list`` and ``poseshift weights import`` through the root CLI app."""

from __future__ import annotations

import timm
import torch
import torchvision
from typer.testing import CliRunner

from poseshift.cli import app
from poseshift.models.backbones import BACKBONES


def env(tmp_path) -> dict[str, str]:
    """Offline, with empty caches, and wide enough that rich does not fold the table."""
    return {
        "HF_HUB_OFFLINE": "1",
        "POSESHIFT_WEIGHTS_DIR": str(tmp_path / "weights"),
        "HF_HOME": str(tmp_path / "hf"),
        "TORCH_HOME": str(tmp_path / "torch"),
        "COLUMNS": "220",
    }


def test_import_then_list_shows_the_weights(tmp_path):
    runner = CliRunner()
    source = tmp_path / "mobilenet_v2.pth"
    torch.save(torchvision.models.mobilenet_v2(width_mult=0.35).state_dict(), source)
    result = runner.invoke(
        app, ["weights", "import", str(source), "--backbone", "mobilenetv2_035"], env=env(tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert "torchvision MobileNetV2 layout" in result.output
    assert (tmp_path / "weights" / "mobilenetv2_035.safetensors").is_file()

    result = runner.invoke(app, ["models", "list"], env=env(tmp_path))
    assert result.exit_code == 0, result.output
    rows = {line.split()[1]: line for line in result.output.splitlines() if line.startswith("│")}
    assert set(rows) == set(BACKBONES)
    assert rows["mobilenetv2_035"].rstrip(" │").endswith("yes")
    assert rows["resnet50"].rstrip(" │").endswith("no")
    assert "76.13" in rows["resnet50"] and "12.32" in rows["resnet50"]  # top-1, GFLOPs
    assert "60.3" in rows["mobilenetv2_035"]  # the paper's number


def test_wrong_architecture_is_one_error_line(tmp_path):
    source = tmp_path / "mnv2_100.pth"
    torch.save(timm.create_model("mobilenetv2_100").state_dict(), source)
    result = CliRunner().invoke(
        app, ["weights", "import", str(source), "--backbone", "mobilenetv2_035"], env=env(tmp_path)
    )
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "does not fit backbone mobilenetv2_035" in errors[0]
    assert not (tmp_path / "weights").exists()
