"""``poseshift demo --quick``: the whole story end to end, small enough for CI."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from conftest import OPENFIELD
from poseshift.cli import app


def test_quick_demo(openfield: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(
        app, ["demo", "--quick", "--out", str(out), "--openfield", str(OPENFIELD)]
    )
    assert result.exit_code == 0, result.output
    results = pd.read_csv(out / "study" / "results.csv")
    # Three backbones of 60-78 % top-1, each from real ImageNet weights and from scratch;
    # a scratch twin sits at its pretrained twin's top-1.
    assert results["backbone"].nunique() >= 3
    assert set(results["init"]) == {"imagenet", "scratch"}
    top1 = results.groupby("backbone")["imagenet_top1"].agg(["min", "max"])
    assert (top1["min"] == top1["max"]).all()
    assert top1["min"].min() <= 61 and top1["max"].max() >= 77
    assert set(results["partition"]) == {"train", "within", "ood", "ood_adapted"}
    report = (out / "study" / "report.html").read_text()
    assert "data:image/png;base64," in report
    [h5] = (out / "openfield-analysis").glob("*.h5")
    poses = pd.read_hdf(h5)
    assert poses.columns.names == ["scorer", "bodyparts", "coords"]
    assert len(poses) == 24
    assert list((out / "openfield-analysis").glob("*_labeled.mp4"))
    text = " ".join(result.output.split())
    assert "report:" in text and "normalized error" in text
    assert re.search(r"ImageNet pretraining (cut|raised) the out-of-domain error by \d+ %", text)
    assert "not measured of the paper's claims" in text
    assert re.search(r"Test-time adaptation .* (cut|raised) the out-of-domain error by \d+ %", text)
    assert re.search(r"'poseshift outliers' picks have \d+\.\d\dx the error of random", text)
    assert "reproduced" in report


def test_demo_offline_without_inputs_stops_before_any_work(tmp_path: Path, closed_url) -> None:
    """A fresh machine with no network and no ../shared: one line, nothing written."""
    env = {
        "POSESHIFT_SHARED": str(tmp_path / "no-shared"),
        "POSESHIFT_EXAMPLES_DIR": str(tmp_path / "examples"),
        "POSESHIFT_WEIGHTS_DIR": str(tmp_path / "weights"),
        "HTTPS_PROXY": closed_url,
        "HF_HUB_OFFLINE": "1",
    }
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)], env=env)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert text.count("error:") == 1 and "Traceback" not in result.output
    assert "openfield-Pranav-2018-10-30" in text and "--openfield PATH" in text
    assert "no ImageNet weights for backbone 'mobilenetv2_035'" in text
    assert "mobilenet_v2_1.0_224_quant.tflite" in text
    assert not out.exists() and not (tmp_path / "examples").exists()
