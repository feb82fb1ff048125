"""``analyze --precision int8``: the agreement it reports, where it refuses, what it records."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_video import tiny_run, write_video

from bad_inputs.refusals import cli_refuses, one_line_error
from poseshift.errors import PoseshiftError
from poseshift.models.codec import ScoremapCodec
from poseshift.models.posenet import PoseNet
from poseshift.predict.int8 import CHECK_FRAMES, agreement, check_int8, quantize_posenet
from poseshift.predict.predictor import Predictor
from poseshift.predict.video import analyze_videos


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory)


def test_agreement_counts_confident_fp32_keypoints_within_two_pixels() -> None:
    reference = np.zeros((2, 3, 3), np.float32)
    reference[..., 2] = [[0.9, 0.9, 0.1], [0.7, 0.65, 0.3]]  # 4 confident keypoints
    test = reference.copy()
    test[0, 1, 0] += 1.5  # within 2 px
    test[1, 0, :2] += 3.0  # 4.2 px off
    test[0, 2, 0] += 50  # not confident in fp32: not counted
    check = agreement(reference, test)
    assert (check.confident, check.within, check.frames) == (4, 3, 2)
    assert check.share == 0.75 and not check.passes
    assert check.max_px == pytest.approx(np.hypot(3, 3))
    assert "3 of 4 confident" in check.describe() and "75.0 %" in check.describe()
    assert agreement(reference, reference).passes


def test_agreement_without_confident_keypoints_is_not_a_pass() -> None:
    poses = np.zeros((3, 2, 3), np.float32)
    check = agreement(poses, poses)
    assert not check.passes and "not measurable" in check.describe()


def test_int8_refuses_where_it_cannot_run(run: Path, tmp_path: Path) -> None:
    with pytest.raises(PoseshiftError) as excinfo:
        check_int8(torch.device("cuda"), True)
    assert "CPU only" in one_line_error(excinfo)
    clip = write_video(tmp_path / "clip.mp4", frames=4)
    message = cli_refuses(
        ["analyze", run, clip, "--precision", "int8", "--no-compile", "--device", "cpu"],
        "--no-compile",
    )
    assert "int8" in message
    assert not list(tmp_path.glob("clip*.h5"))  # nothing written


def test_int8_keeps_the_stem_and_the_residual_sums_in_fp32() -> None:
    torch.manual_seed(0)
    model = PoseNet("resnet50", 2).eval()
    batches = [torch.randn(1, 3, 64, 96) for _ in range(2)]
    before = {name: value.clone() for name, value in model.state_dict().items()}
    network = quantize_posenet(model, batches)
    nodes = list(network.backbone.graph.nodes)

    def dequantized(node: torch.fx.Node) -> bool:
        return isinstance(node, torch.fx.Node) and "dequantize" in str(node.target)

    convolutions = [n for n in nodes if "conv2d" in str(n.target)]
    additions = [n for n in nodes if str(n.target).startswith("aten.add")]
    assert len(convolutions) == 53 and len(additions) == 16  # ResNet-50
    stem, *rest = convolutions
    assert not any(dequantized(arg) for arg in stem.args)  # fp32 image and weights
    assert all(dequantized(c.args[0]) and dequantized(c.args[1]) for c in rest)  # int8
    assert not any(dequantized(arg) for n in additions for arg in n.args)  # fp32 sums
    with torch.no_grad():
        outputs, reference = network(batches[0]), model(batches[0])
    for name in ("scoremaps", "locref"):
        assert outputs[name].dtype == torch.float32  # the head and decoding run in fp32
        assert outputs[name].shape == reference[name].shape
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())


def test_int8_quantizes_a_stride_32_network_with_its_skip() -> None:
    """backbone_stride 32: the quantized backbone hands the head both maps, so int8 poses
    follow fp32's (a dropped skip would be an error, a wrong one a large difference)."""
    torch.manual_seed(0)
    model = PoseNet("resnet50", 2, backbone_stride=32).eval()
    batches = [torch.randn(1, 3, 64, 96) for _ in range(4)]
    network = quantize_posenet(model, batches)
    with torch.no_grad():
        outputs, reference = network(batches[0]), model(batches[0])
    assert outputs["scoremaps"].shape == reference["scoremaps"].shape == (1, 2, 8, 12)
    error = (outputs["scoremaps"] - reference["scoremaps"]).abs().max()
    assert error < 0.1 * reference["scoremaps"].abs().max()


def test_int8_is_not_for_still_images() -> None:
    predictor = Predictor(PoseNet("mobilenetv2_035", 2), ScoremapCodec(8, 17, 7.28), device="cpu")
    predictor_int8 = Predictor(
        predictor.model, predictor.codec, device="cpu", precision="int8", compile=True
    )
    frame = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(PoseshiftError) as excinfo:
        predictor_int8.predict_frames([frame])
    assert "video analysis" in one_line_error(excinfo)


def test_int8_analysis_reports_and_records_its_agreement(run: Path, tmp_path: Path) -> None:
    clip = write_video(tmp_path / "mouse.mp4", frames=40)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        [h5] = analyze_videos(
            run, [clip], batch_size=8, device="cpu", precision="int8", show_progress=False
        )
    meta = pickle.loads(h5.with_name(f"{h5.stem}_meta.pickle").read_bytes())["data"]
    check = meta["pytorch-config"]["poseshift"]["int8_agreement"]
    assert check["frames"] == 40 - 32  # the frames after the 32 calibration frames
    assert check["frames"] <= CHECK_FRAMES and 0 <= check["within"] <= check["confident"]
    assert meta["nframes"] == 40
    missed = [w for w in caught if "miss the accuracy gate" in str(w.message)]
    assert bool(missed) == (check["share"] < 0.99)  # the tiny run's warning names the fix
    assert all("--precision bf16 or fp32" in str(w.message) for w in missed)
    record = json.loads(h5.with_suffix(".json").read_text())
    assert record["autocast"] == "int8"  # an fp32 analysis never reuses int8 poses
