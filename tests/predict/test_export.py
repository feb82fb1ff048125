"""``poseshift export``: ONNX and TorchScript models that match PyTorch, with their recipe."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_video import tiny_run
from typer.testing import CliRunner

from poseshift.cli import app
from poseshift.errors import PoseshiftError
from poseshift.models.posenet import PoseNet, load_posenet
from poseshift.predict.export import export_onnx, export_run, export_torchscript, recipe_path
from poseshift.run import RunDir

SHAPES = [(1, 3, 48, 64), (3, 3, 96, 80)]  # batch, height and width differ from the example


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory)


def _reference(run: Path, shape: tuple[int, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    model = load_posenet(RunDir(run).snapshot_path(6)).eval()
    images = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
    with torch.no_grad():
        outputs = model(images)
    return images.numpy(), {k: v.numpy() for k, v in outputs.items()}


def test_torchscript_matches_pytorch(run: Path) -> None:
    path = export_run(run, format="torchscript")
    assert path == run / "export" / f"{RunDir(run).scorer(6)}.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated upstream
        module = torch.jit.load(str(path))
    for shape in SHAPES:
        images, expected = _reference(run, shape)
        with torch.no_grad():
            scoremaps, locref = module(torch.from_numpy(images))
        np.testing.assert_allclose(scoremaps.numpy(), expected["scoremaps"], atol=1e-5)
        np.testing.assert_allclose(locref.numpy(), expected["locref"], atol=1e-5)
    recipe = json.loads(recipe_path(path).read_text())
    assert recipe["bodyparts"] == ["Nose", "Eye", "Tail"]
    assert recipe["preprocessing"]["resize_factor"] == 0.8
    assert len(recipe["preprocessing"]["mean"]) == 3 and recipe["decoding"]["stride"] == 8


def test_onnx_matches_pytorch_with_dynamic_shapes(run: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    result = CliRunner().invoke(app, ["export", str(run), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    path = run / "export" / f"{RunDir(run).scorer(6)}.onnx"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    for shape in SHAPES:
        images, expected = _reference(run, shape)
        scoremaps, locref = session.run(["scoremaps", "locref"], {"images": images})
        np.testing.assert_allclose(scoremaps, expected["scoremaps"], atol=1e-4)
        np.testing.assert_allclose(locref, expected["locref"], atol=1e-4)
    assert json.loads(recipe_path(path).read_text())["format"] == "onnx"


def test_unknown_format_is_an_error(run: Path) -> None:
    with pytest.raises(PoseshiftError, match="export format must be one of"):
        export_run(run, format="tflite")


STRIDE_32_SHAPES = [(1, 3, 64, 96), (2, 3, 70, 100)]  # 70 x 100: no multiple of 32


def _stride_32_reference() -> tuple[PoseNet, list[tuple[torch.Tensor, np.ndarray]]]:
    model = PoseNet("mobilenetv2_035", 2, backbone_stride=32).eval()
    cases = []
    for shape in STRIDE_32_SHAPES:
        images = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
        with torch.no_grad():
            cases.append((images, model(images)["scoremaps"].numpy()))
    return model, cases


def test_a_stride_32_network_scripts_with_its_skip(tmp_path: Path) -> None:
    """backbone_stride 32: the scripted model carries the upsampling and the stride-16 skip."""
    model, cases = _stride_32_reference()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(str(export_torchscript(model, tmp_path / "m.pt")))
    for images, expected in cases:
        with torch.no_grad():
            np.testing.assert_allclose(scripted(images)[0].numpy(), expected, atol=1e-5)


@pytest.mark.slow  # ONNX export of a second network: ~3 min on 2 cores
def test_a_stride_32_network_exports_to_onnx_with_its_skip(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model, cases = _stride_32_reference()
    path = export_onnx(model, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for images, expected in cases:
        onnx_maps = session.run(["scoremaps"], {"images": images.numpy()})[0]
        np.testing.assert_allclose(onnx_maps, expected, atol=1e-4)
