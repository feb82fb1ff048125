"""``analyze`` and ``label-video`` on short synthetic clips with a tiny trained run."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image
from tiny_video import cut_mdat, read_frames, tiny_run, write_video
from typer.testing import CliRunner

from poseshift.cli import app
from poseshift.data.project import PoseDataset
from poseshift.errors import PoseshiftError
from poseshift.models.codec import ScoremapCodec
from poseshift.models.posenet import load_posenet, read_snapshot
from poseshift.predict.dlc_shuffle import dlc_net_name, dlc_net_type
from poseshift.predict.images import predict_images
from poseshift.predict.labeled_video import label_video
from poseshift.predict.predictor import Predictor
from poseshift.predict.video import analyze_videos
from poseshift.run import RunDir

runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory)


@pytest.fixture(scope="module")
def scorer(run: Path) -> str:
    """The name DeepLabCut derives for MobileNetV2-0.35, shuffle 1, snapshot 6 of project
    Task 'tiny', date e.g. 'Dec3' (its config.yaml)."""
    return f"DLC_mobnet_35_{project_id(run)}shuffle1_6"


def project_id(run: Path) -> str:
    """``<Task><date>`` of the run's project, as DeepLabCut joins them."""
    config = yaml.safe_load((Path(RunDir(run).spec().project) / "config.yaml").read_text())
    return f"{config['Task']}{config['date']}"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("clip") / "mouse.mp4", frames=12)


def test_outputs_have_deeplabcuts_layout(
    run: Path, clip: Path, tmp_path: Path, scorer: str
) -> None:
    [h5] = analyze_videos(run, [clip], batch_size=5, dest=tmp_path, show_progress=False)
    assert h5 == tmp_path / f"mouse{scorer}.h5"
    table = pd.read_hdf(h5)  # as DeepLabCut reads it: no key
    assert table.columns.names == ["scorer", "bodyparts", "coords"]
    assert table.columns.levels[0].tolist() == [scorer]
    assert table.columns.get_level_values("bodyparts")[::3].tolist() == ["Nose", "Eye", "Tail"]
    assert table.columns.get_level_values("coords")[:3].tolist() == ["x", "y", "likelihood"]
    assert (table.dtypes == np.float32).all()  # as DeepLabCut 3 writes them
    assert table.index.tolist() == list(range(12)) and table.index.dtype.kind == "i"
    with pd.HDFStore(h5, "r") as store:
        assert store.keys() == ["/df_with_missing"]
        assert not store.get_storer("df_with_missing").is_table  # pandas 2 can read it
    likelihood = table.xs("likelihood", level="coords", axis=1).to_numpy()
    assert ((likelihood >= 0) & (likelihood <= 1)).all()
    csv = pd.read_csv(h5.with_suffix(".csv"), header=[0, 1, 2], index_col=0)
    np.testing.assert_array_equal(csv.to_numpy(np.float32), table.to_numpy())  # float32 text
    meta = pickle.loads((tmp_path / f"mouse{scorer}_meta.pickle").read_bytes())["data"]
    assert set(meta) == DLC3_META_KEYS
    assert meta["nframes"] == 12 and meta["fps"] == pytest.approx(10.0)
    assert meta["frame_dimensions"] == (64, 48) and meta["Scorer"] == scorer
    assert meta["cropping"] is False and meta["cropping_parameters"] == [0, 64, 0, 48]
    assert meta["bodyparts"] == ["Nose", "Eye", "Tail"] and meta["individuals"] == ["animal"]
    # DeepLabCut derives the same name from the model folder the run now holds.
    train = RunDir(run).dlc_model_prefix(6) / "dlc-models/iteration-0"
    train = train / f"{project_id(run)}-trainset95shuffle1/train"
    assert yaml.safe_load((train / "pose_cfg.yaml").read_text())["net_type"] == (
        "mobilenet_v2_0.35"
    )
    assert [p.name for p in train.glob("snapshot-*.index")] == ["snapshot-6.index"]


# DeepLabCut 3.0.2, pose_estimation_pytorch/apis/videos.py, _generate_metadata.
DLC3_META_KEYS = {
    "start",
    "stop",
    "run_duration",
    "Scorer",
    "pytorch-config",
    "fps",
    "batch_size",
    "frame_dimensions",
    "nframes",
    "iteration (active-learning)",
    "training set fraction",
    "cropping",
    "cropping_parameters",
    "individuals",
    "bodyparts",
    "unique_bodyparts",
}


@pytest.mark.parametrize(
    ("backbone", "name"),
    [
        ("mobilenetv2_100", "mobnet_100"),
        ("mobilenetv2_050", "mobnet_50"),
        ("resnet101", "resnet101"),
        ("efficientnet_b3", "effnet_b3"),
        ("efficientnet_lite0", "effnet_lite0"),
    ],
)
def test_network_names_are_deeplabcuts(backbone: str, name: str) -> None:
    """As DeepLabCut 2 abbreviates its net_types (mobilenet_v2_1.0, resnet_101, ...)."""
    assert dlc_net_name(dlc_net_type(backbone)) == name


def test_predictions_match_predict_images_on_the_same_frames(
    run: Path, clip: Path, tmp_path: Path
) -> None:
    frames = read_frames(clip)
    names = []
    for i, frame in enumerate(frames):
        names.append(f"frames/{i:03d}.png")
        (tmp_path / "frames").mkdir(exist_ok=True)
        Image.fromarray(frame).save(tmp_path / names[-1])
    dataset = PoseDataset(
        root=tmp_path,
        scorer="x",
        bodyparts=["Nose", "Eye", "Tail"],
        images=names,
        keypoints=np.full((len(names), 3, 2), np.nan, np.float32),
        groups=["clip"] * len(names),
        image_sizes=np.tile([64, 48], (len(names), 1)),
    )
    predictor = Predictor.from_snapshot(RunDir(run).snapshot_path(6), device="cpu", compile=False)
    assert predictor.input_scale == 0.8  # the run's global_scale travels in the snapshot
    expected = predict_images(predictor, dataset, range(len(names)), batch_size=1)
    for batch_size in (1, 5):
        [h5] = analyze_videos(
            run,
            [clip],
            batch_size=batch_size,
            dest=tmp_path / f"b{batch_size}",
            show_progress=False,
        )
        got = pd.read_hdf(h5).to_numpy().reshape(-1, 3, 3)
        np.testing.assert_allclose(got, expected, atol=1e-4)


def test_resize_maps_predictions_back_to_video_pixels(
    run: Path, clip: Path, tmp_path: Path
) -> None:
    [h5] = analyze_videos(
        run, [clip], batch_size=4, resize=(32, 24), dest=tmp_path, show_progress=False
    )
    model = load_posenet(RunDir(run).snapshot_path(6)).eval()
    frame = np.zeros((32, 32, 3), np.uint8)  # black below, up to the stride (as in training)
    frame[:24] = cv2.resize(read_frames(clip)[3], (32, 24), interpolation=cv2.INTER_AREA)
    with torch.no_grad():
        out = model(model.normalize(torch.from_numpy(frame).permute(2, 0, 1)[None]))
    expected = ScoremapCodec().decode(out["scoremaps"], out["locref"])[0]
    expected[:, :2] = (expected[:, :2] + 0.5) * 2.0 - 0.5  # cv2.resize's pixel centres, 64 / 32
    got = pd.read_hdf(h5).to_numpy().reshape(-1, 3, 3)[3]
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-4)
    meta = pickle.loads(h5.with_name(f"{h5.stem}_meta.pickle").read_bytes())["data"]
    assert meta["pytorch-config"]["poseshift"]["input_size"] == [32, 24]


def test_several_videos_share_one_model_load(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = []

    def counting_load(path, *args, **kwargs):
        loads.append(path)
        return read_snapshot(path, *args, **kwargs)

    monkeypatch.setattr("poseshift.predict.predictor.read_snapshot", counting_load)
    videos = [write_video(tmp_path / "a.mp4", 5), write_video(tmp_path / "b.mp4", 9)]
    outputs = analyze_videos(run, videos, batch_size=4, show_progress=False)
    assert len(loads) == 1
    assert [len(pd.read_hdf(p)) for p in outputs] == [5, 9]
    stamp = outputs[0].stat().st_mtime_ns
    assert analyze_videos(run, videos, show_progress=False) == outputs  # already analyzed
    assert len(loads) == 1 and outputs[0].stat().st_mtime_ns == stamp


def test_unreadable_video_is_a_one_line_error_and_nothing_is_written(
    run: Path, clip: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # moov atom lost
    out = tmp_path / "out"
    with pytest.raises(PoseshiftError, match=r"cannot decode video .*broken\.mp4"):
        analyze_videos(run, [clip, broken], dest=out, show_progress=False)
    assert not out.exists()
    with pytest.raises(PoseshiftError, match=r"missing\.mp4 does not exist"):
        analyze_videos(run, [tmp_path / "missing.mp4"], show_progress=False)
    result = runner.invoke(app, ["analyze", str(run), str(broken), "--dest", str(out)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot decode video")
    assert result.stderr.strip().count("\n") == 0


def test_truncated_video_keeps_readable_frames_with_a_warning(
    run: Path, clip: Path, tmp_path: Path
) -> None:
    truncated = cut_mdat(clip, tmp_path / "cut.mp4", keep=0.5)
    readable = len(read_frames(truncated))
    assert 0 < readable < 12
    with pytest.warns(UserWarning, match=f"decoded {readable} of 12 frames"):
        [h5] = analyze_videos(run, [truncated], batch_size=4, show_progress=False)
    assert len(pd.read_hdf(h5)) == readable


def test_label_video_draws_every_frame(run: Path, clip: Path, tmp_path: Path, scorer: str) -> None:
    path = label_video(run, clip, pcutoff=0.0, dest=tmp_path, show_progress=False)
    assert path == tmp_path / f"mouse{scorer}_labeled.mp4"
    labeled = read_frames(path)
    assert len(labeled) == 12 and labeled[0].shape == (48, 64, 3)
    assert np.abs(labeled[0].astype(int) - read_frames(clip)[0]).mean() > 1  # dots drawn
    result = runner.invoke(
        app,
        ["label-video", str(run), str(clip), "--dest", str(tmp_path / "cli"), "--pcutoff", "0.5"],
    )
    assert result.exit_code == 0, result.output
    assert len(read_frames(tmp_path / "cli" / path.name)) == 12


def test_label_video_draws_a_deeplabcut_poses_file(
    run: Path, clip: Path, tmp_path: Path, scorer: str
) -> None:
    """--poses draws a given file (here one in DeepLabCut 3's table format), analyzing nothing;
    the project folder gives the style."""
    [h5] = analyze_videos(run, [clip], dest=tmp_path / "ours", show_progress=False)
    theirs = tmp_path / "theirs" / "mouseDLC_Resnet50_tinyDec3shuffle1_snapshot_010.h5"
    theirs.parent.mkdir()
    table = pd.read_hdf(h5)
    table.columns = table.columns.set_levels(["DLC_Resnet50_tiny"], level="scorer")
    table.to_hdf(theirs, key="df_with_missing", format="table", mode="w")
    project = yaml.safe_load((run / "run.yaml").read_text())["project"]
    result = runner.invoke(
        app, ["label-video", project, str(clip), "--poses", str(theirs), "--pcutoff", "0"]
    )
    assert result.exit_code == 0, result.output
    labeled = read_frames(theirs.with_name(f"{theirs.stem}_labeled.mp4"))
    ours = read_frames(label_video(run, clip, pcutoff=0.0, dest=h5.parent, show_progress=False))
    assert len(labeled) == 12
    assert np.abs(labeled[5].astype(int) - ours[5]).mean() < 0.5  # the same drawing
    assert np.abs(labeled[5].astype(int) - read_frames(clip)[5]).mean() > 1
    bad = tmp_path / "bad.h5"
    pd.DataFrame(np.zeros((2, 2))).to_hdf(bad, key="df_with_missing", mode="w")
    result = runner.invoke(app, ["label-video", project, str(clip), "--poses", str(bad)])
    assert result.exit_code == 2 and "not scorer/bodyparts/coords" in result.stderr


def test_analyze_cli(run: Path, clip: Path, tmp_path: Path, scorer: str) -> None:
    args = ["analyze", str(run), str(clip), "--dest", str(tmp_path), "--resize", "32x24"]
    result = runner.invoke(app, [*args, "--batch-size", "3", "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    assert len(pd.read_hdf(tmp_path / f"mouse{scorer}.h5")) == 12
    result = runner.invoke(app, [*args, "--precision", "fp64"])
    assert result.exit_code == 2 and "precision must be one of" in result.stderr


@pytest.mark.compiled
def test_compiled_network_gives_the_eager_poses(run: Path, clip: Path, tmp_path: Path) -> None:
    # Batch 5 over 12 frames: the short last batch is padded, not compiled a second time.
    [eager] = analyze_videos(
        run, [clip], batch_size=5, dest=tmp_path / "eager", compile=False, show_progress=False
    )
    [compiled] = analyze_videos(
        run, [clip], batch_size=5, dest=tmp_path / "compiled", compile=True, show_progress=False
    )
    np.testing.assert_allclose(pd.read_hdf(compiled), pd.read_hdf(eager), atol=1e-3)


def test_failed_compilation_falls_back_to_eager(
    run: Path, clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_compiler(model, **options):
        def fail(*args):
            raise RuntimeError("no working C++ compiler")

        return fail

    monkeypatch.setattr(torch, "compile", no_compiler)
    with pytest.warns(UserWarning, match="torch.compile failed.*no working C"):
        [h5] = analyze_videos(
            run, [clip], batch_size=4, dest=tmp_path, compile=True, show_progress=False
        )
    assert len(pd.read_hdf(h5)) == 12


def test_runs_with_one_deeplabcut_name_never_replace_each_others_poses(
    run: Path, clip: Path, tmp_path: Path
) -> None:
    """DeepLabCut's name holds backbone, shuffle and iteration only: another seed or fraction
    gets the same one, so the second run is refused until given its own --scorer."""
    other = tmp_path / "other-run"
    shutil.copytree(run, other, ignore=shutil.ignore_patterns("export", "deeplabcut"))
    spec = yaml.safe_load((other / "run.yaml").read_text())
    spec["train"]["seed"], spec["fraction"] = 1, 0.5  # same backbone, init, shuffle, iterations
    (other / "run.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    [first] = analyze_videos(run, [clip], dest=tmp_path / "out", show_progress=False)
    before = first.read_bytes()
    with pytest.raises(PoseshiftError, match=r"another run .* use another --dest or --scorer"):
        analyze_videos(other, [clip], dest=tmp_path / "out", show_progress=False)
    assert first.read_bytes() == before
    result = runner.invoke(
        app, ["analyze", str(other), str(clip), "--dest", str(tmp_path / "out"), "--scorer",
              "DLC_mine_seed1"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "init_weights='mine_seed1'" in result.output
    second = tmp_path / "out" / "mouseDLC_mine_seed1.h5"
    assert pd.read_hdf(second).columns.levels[0].tolist() == ["DLC_mine_seed1"]
    assert first.read_bytes() == before


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("mine", "must start with 'DLC_'"),
        ("DLC_a.b", "may not contain '.'"),
        ("DLC_a/b", "may not contain '.', '/'"),
        ("DLC_x_filtered", "DeepLabCut skips such files"),
    ],
)
def test_a_scorer_deeplabcut_cannot_find_is_refused(
    run: Path, clip: Path, tmp_path: Path, name: str, why: str
) -> None:
    result = runner.invoke(
        app, ["analyze", str(run), str(clip), "--dest", str(tmp_path), "--scorer", name]
    )
    assert result.exit_code == 2 and why in result.stderr
    assert result.stderr.strip().count("\n") == 0 and not list(tmp_path.iterdir())


def test_an_output_is_reused_only_for_the_same_video_snapshot_and_options(
    run: Path, tmp_path: Path
) -> None:
    clip = write_video(tmp_path / "clip.mp4", frames=6)
    dest = tmp_path / "out"

    def analyze(**options) -> int:
        [h5] = analyze_videos(run, [clip], dest=dest, show_progress=False, **options)
        return h5.stat().st_mtime_ns

    previous = analyze()
    source = json.loads(next(dest.glob("*.json")).read_text())
    assert source["video"]["path"] == str(clip.resolve()) and source["autocast"] == "off"
    assert analyze() == previous  # all the same: reused
    assert analyze(batch_size=3, compile=False) == previous  # neither changes the poses
    changes = {
        "another input size": lambda: analyze(resize=(32, 24)),
        "back to the training scale": analyze,
        "the video was replaced": lambda: os.utime(clip, ns=(10**9, 10**9)) or analyze(),
        "another precision": lambda: analyze(precision="bf16"),
        "the snapshot was written again": lambda: (
            os.utime(RunDir(run).snapshot_path(6)) or analyze()
        ),
    }
    for why, change in changes.items():  # each one makes the poses be computed again
        now = change()
        assert now != previous, why
        previous = now


def test_videos_of_one_name_do_not_overwrite_each_other(run: Path, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    a = write_video(tmp_path / "a" / "mouse.mp4", frames=4)
    b = write_video(tmp_path / "b" / "mouse.mp4", frames=5)
    dest = tmp_path / "out"
    with pytest.raises(PoseshiftError, match=r"a/mouse\.mp4 and .*b/mouse\.mp4 would both"):
        analyze_videos(run, [a, b], dest=dest, show_progress=False)
    assert not dest.exists()
    [h5] = analyze_videos(run, [a], dest=dest, show_progress=False)
    with pytest.raises(PoseshiftError, match=r"holds the poses of .*a/mouse\.mp4, not of"):
        analyze_videos(run, [b], dest=dest, show_progress=False)
    assert len(pd.read_hdf(h5)) == 4
    analyze_videos(run, [b], dest=dest, overwrite=True, show_progress=False)
    assert len(pd.read_hdf(h5)) == 5
    # Each next to its own video, as DeepLabCut does: no clash.
    outputs = analyze_videos(run, [a, b], show_progress=False)
    assert [p.parent for p in outputs] == [a.parent, b.parent]


def test_a_project_without_task_is_refused_before_analysis(
    run: Path, clip: Path, tmp_path: Path
) -> None:
    """DeepLabCut's name needs the project's Task: refused in one line, nothing written."""
    project = tmp_path / "proj"
    shutil.copytree(RunDir(run).spec().project, project)
    config = yaml.safe_load((project / "config.yaml").read_text())
    del config["Task"]
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    other = tmp_path / "run"
    shutil.copytree(run, other, ignore=shutil.ignore_patterns("export", "deeplabcut"))
    spec = yaml.safe_load((other / "run.yaml").read_text())
    (other / "run.yaml").write_text(yaml.safe_dump({**spec, "project": str(project)}))
    out = tmp_path / "out"
    with pytest.raises(PoseshiftError, match=r"config\.yaml has no 'Task'.*--scorer NAME"):
        analyze_videos(other, [clip], dest=out, show_progress=False)
    assert not out.exists() and not (other / "deeplabcut").exists()
    [h5] = analyze_videos(other, [clip], dest=out, scorer="DLC_mine", show_progress=False)
    assert h5.name == "mouseDLC_mine.h5"
