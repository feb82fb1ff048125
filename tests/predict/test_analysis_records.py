"""What an analysis leaves beside its poses (exports, reliability) always comes from them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sleap_io
from tiny_video import tiny_run, write_video

from poseshift.predict.frames import scaled_size
from poseshift.predict.predictor import run_predictor
from poseshift.predict.reliability import RESCALE, read_reliability
from poseshift.predict.video import analyze_videos, predict_video
from poseshift.predict.video_extras import analyze_with_extras
from poseshift.run import RunDir


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory)


def h5_xy(h5: Path) -> np.ndarray:
    return pd.read_hdf(h5).to_numpy().reshape(-1, 3, 3)[..., :2]


def slp_xy(h5: Path) -> np.ndarray:
    labels = sleap_io.load_slp(str(h5.with_suffix(".predictions.slp")))
    return np.stack([frame.instances[0].numpy() for frame in labels.labeled_frames])


def test_an_export_never_shows_another_analysis_poses(run: Path, tmp_path: Path) -> None:
    clip = write_video(tmp_path / "mouse.mp4", frames=6)

    def analyze(**options) -> Path:
        [h5] = analyze_videos(run, [clip], dest=tmp_path / "out", show_progress=False, **options)
        return h5

    h5 = analyze(export=["slp"])
    slp = h5.with_suffix(".predictions.slp")
    np.testing.assert_allclose(slp_xy(h5), h5_xy(h5), atol=1e-4)
    analyze(resize=(32, 24))  # new poses, no export asked: the old one is gone
    assert not slp.exists()
    h5 = analyze(resize=(32, 24), export=["slp"])
    np.testing.assert_allclose(slp_xy(h5), h5_xy(h5), atol=1e-4)  # the 32x24 poses


def test_an_export_is_added_to_reused_poses(run: Path, tmp_path: Path) -> None:
    clip = write_video(tmp_path / "mouse.mp4", frames=6)
    [h5] = analyze_videos(run, [clip], dest=tmp_path, export=["slp"], show_progress=False)
    stamp = h5.stat().st_mtime_ns
    analyze_videos(run, [clip], dest=tmp_path, export=["nwb"], show_progress=False)
    assert h5.stat().st_mtime_ns == stamp  # the same poses, not computed again
    assert h5.with_suffix(".nwb").is_file() and h5.with_suffix(".predictions.slp").is_file()
    assert json.loads(h5.with_suffix(".json").read_text())["exports"] == ["slp", "nwb"]
    h5.with_suffix(".predictions.slp").unlink()  # a deleted export is made again
    analyze_videos(run, [clip], dest=tmp_path, export=["slp"], show_progress=False)
    np.testing.assert_allclose(slp_xy(h5), h5_xy(h5), atol=1e-4)
    assert h5.stat().st_mtime_ns == stamp


def rescale_px(run: Path, clip: Path, h5: Path, size: tuple[int, int], precision: str):
    """rescale_px as the reliability table defines it, against poses at ``size``."""
    predictor = run_predictor(RunDir(run), 6, device="cpu", precision=precision, compile=False)
    other = predict_video(predictor, clip, resize=size).poses[..., :2]
    return np.median(np.linalg.norm(h5_xy(h5) - other, axis=-1), axis=-1)


def test_reliability_rescales_the_analyzed_size_at_its_precision(run: Path, tmp_path: Path) -> None:
    clip = write_video(tmp_path / "mouse.mp4", frames=6)  # 64x48; the run's own input 51x38

    def scores(**options) -> tuple[Path, pd.DataFrame]:
        [h5] = analyze_with_extras(
            run, [clip], reliability=True, device="cpu", dest=tmp_path, show_progress=False,
            **options,
        )  # fmt: skip
        return h5, read_reliability(h5)

    h5, table = scores(resize=(128, 96))
    wanted = rescale_px(run, clip, h5, scaled_size(128, 96, RESCALE), "fp32")
    np.testing.assert_allclose(table["rescale_px"], wanted, atol=1e-3)
    h5, table = scores(resize=(128, 96), precision="bf16")  # other poses: scored again
    wanted = rescale_px(run, clip, h5, scaled_size(128, 96, RESCALE), "bf16")
    np.testing.assert_allclose(table["rescale_px"], wanted, atol=1e-3)
    stamp = h5.with_name(f"{h5.stem}_reliability.csv").stat().st_mtime_ns
    h5, table = scores(resize=(128, 96), precision="bf16")  # the same analysis: reused
    assert h5.with_name(f"{h5.stem}_reliability.csv").stat().st_mtime_ns == stamp
    h5, table = scores()  # back to the run's input size
    wanted = rescale_px(run, clip, h5, scaled_size(51, 38, RESCALE), "fp32")
    np.testing.assert_allclose(table["rescale_px"], wanted, atol=1e-3)
