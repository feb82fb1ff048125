"""``poseshift data import`` / ``data export`` on files written by the real tools.

The Lightning Pose example is Lightning Pose's own data folder; every .slp, .nwb and Label
Studio file is written here by sleap-io itself (the SLEAP team's reader/writer), from a
project or from scratch with a real video; round trips must give the same coordinates
(1e-6 px), bodypart order, skeleton and groups.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import sleap_io
import yaml
from typer.testing import CliRunner

from conftest import make_project, spec_for
from poseshift.cli import app
from poseshift.data.formats.export import export_labels
from poseshift.data.formats.read import ImportOptions, import_labels
from poseshift.data.project import PoseDataset, load_project
from poseshift.evaluate.evaluate import evaluate_run
from poseshift.train.trainer import train

runner = CliRunner()


def imported(source: Path, out: Path, *args: str) -> PoseDataset:
    """Import through the CLI, as a user does, and read the project back."""
    result = runner.invoke(app, ["data", "import", str(source), str(out), *args])
    assert result.exit_code == 0, result.output
    return load_project(out)


def by_image(dataset: PoseDataset) -> dict[str, np.ndarray]:
    return dict(zip(dataset.images, dataset.keypoints, strict=True))


def test_lightning_pose_example_becomes_a_project(lightning_pose: Path, tmp_path: Path) -> None:
    info = runner.invoke(app, ["data", "info", str(lightning_pose)])
    assert info.exit_code == 2 and "poseshift data import" in " ".join(info.stderr.split())
    project = imported(lightning_pose, tmp_path / "lp")
    with open(lightning_pose / "CollectedData.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    header = list(dict.fromkeys(rows[1][1:]))
    assert project.bodyparts == header and len(header) == 17  # the file's order, not sorted
    assert project.scorer == "rick" and len(project) == 90 == len(rows) - 3
    assert project.group_names == ["mirror-mouse-example"]  # a flat folder: one group
    points = by_image(project)
    for row in rows[3:]:
        name = f"labeled-data/mirror-mouse-example/{row[0].split('/')[-1]}"
        expected = np.array([float(v) if v else np.nan for v in row[1:]]).reshape(-1, 2)
        np.testing.assert_allclose(points[name], expected, atol=1e-4)
        assert (tmp_path / "lp" / name).read_bytes() == (lightning_pose / row[0]).read_bytes()
    assert np.isnan(project.keypoints).any()  # unlabeled cells stay unlabeled
    config = yaml.safe_load((tmp_path / "lp" / "config.yaml").read_text())
    assert list(config["video_sets"]) == [
        str((lightning_pose / "videos/test_vid.mp4").resolve()),
        str((tmp_path / "lp/labeled-data/mirror-mouse-example").resolve()),  # for check_labels
    ]
    csv_only = imported(lightning_pose / "CollectedData.csv", tmp_path / "csv")
    assert by_image(csv_only).keys() == points.keys()


@pytest.fixture(scope="module")
def two_groups(tmp_path_factory: pytest.TempPathFactory) -> PoseDataset:
    """Two groups, a skeleton, and unlabeled keypoints: what a round trip must keep."""
    root = tmp_path_factory.mktemp("rt") / "src"
    dataset = make_project(root, groups=2, frames=3, bodyparts=("Tail", "Nose", "Eye"))
    dataset.keypoints[1, 2] = np.nan
    dataset.keypoints[4, 0] = np.nan
    from poseshift.data.project import write_project

    write_project(dataset)
    return load_project(root)


@pytest.mark.parametrize("name", ["labels.slp", "labels.pkg.slp", "labels.nwb", "labels.json"])
def test_round_trip(two_groups: PoseDataset, tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    result = runner.invoke(app, ["data", "export", str(two_groups.root), str(out)])
    assert result.exit_code == 0, result.output
    if name != "labels.json":  # sleap-io opens it: right frames and coordinates
        labels = sleap_io.load_file(str(out))
        assert labels.skeleton.node_names == ["Tail", "Nose", "Eye"]
        assert labels.skeleton.edge_names == [("Tail", "Nose")]
        assert len(labels) == len(two_groups)
        first = labels.labeled_frames[0]
        np.testing.assert_allclose(first.instances[0].numpy(), two_groups.keypoints[0], atol=1e-6)
        if name == "labels.pkg.slp":
            np.testing.assert_array_equal(first.image, two_groups.load_image(0))  # lossless
    back = imported(out, tmp_path / "back", "--images", str(two_groups.root))
    assert back.bodyparts == two_groups.bodyparts and back.skeleton == two_groups.skeleton
    assert back.scorer == two_groups.scorer or name == "labels.nwb"
    assert back.group_names == two_groups.group_names
    expected = by_image(two_groups)
    assert by_image(back).keys() == expected.keys()
    for image, points in by_image(back).items():
        np.testing.assert_allclose(points, expected[image], atol=1e-6)


def sleap_file(tmp_path: Path, video_file: Path) -> Path:
    """What a SLEAP user has: a .slp labeling frames 3, 10 and 20 of a video, two animals in
    frame 20, and a predicted instance on frame 30."""
    skeleton = sleap_io.Skeleton(["head", "body", "tail"], edges=[["head", "body"]])
    video = sleap_io.Video.from_filename(str(video_file))
    mouse, rival = sleap_io.Track("mouse"), sleap_io.Track("rival")

    def user(offset: float, track: sleap_io.Track) -> sleap_io.Instance:
        points = np.array([[10.5, 20.25], [30.0, 40.0], [np.nan, np.nan]]) + offset
        return sleap_io.Instance.from_numpy(points, skeleton=skeleton, track=track)

    frames = [
        sleap_io.LabeledFrame(video=video, frame_idx=3, instances=[user(0, mouse)]),
        sleap_io.LabeledFrame(video=video, frame_idx=10, instances=[user(1, mouse)]),
        sleap_io.LabeledFrame(
            video=video, frame_idx=20, instances=[user(2, mouse), user(50, rival)]
        ),
        sleap_io.LabeledFrame(
            video=video,
            frame_idx=30,
            instances=[
                sleap_io.PredictedInstance.from_numpy(
                    np.array([[5.0, 6.0], [7.0, 8.0], [9.0, 9.5]]),
                    skeleton=skeleton,
                    point_scores=np.array([0.9, 0.8, 0.7]),
                    score=0.8,
                )
            ],
        ),
    ]
    path = tmp_path / "mice.slp"
    sleap_io.save_slp(sleap_io.Labels(frames), str(path))
    return path


def test_slp_with_a_video(lightning_pose: Path, tmp_path: Path) -> None:
    video_file = tmp_path / "session1.mp4"
    shutil.copy(lightning_pose / "videos" / "test_vid.mp4", video_file)
    slp = sleap_file(tmp_path, video_file)
    line = runner.invoke(app, ["data", "import", str(slp), str(tmp_path / "no")])
    assert line.exit_code == 2 and "frame 20" in line.output and "--individual" in line.output
    assert not (tmp_path / "no").exists()
    project = imported(slp, tmp_path / "mouse", "--individual", "mouse")
    assert project.bodyparts == ["head", "body", "tail"]
    assert project.skeleton == [("head", "body")]
    assert project.images == [f"labeled-data/session1/img{i:05d}.png" for i in (3, 10, 20)]
    np.testing.assert_allclose(project.keypoints[1, 0], [11.5, 21.25])
    frame = sleap_io.load_video(str(video_file))[10]
    np.testing.assert_array_equal(project.load_image(1), np.repeat(frame, 3 // frame.shape[2], 2))
    with_predictions = imported(
        slp, tmp_path / "pred", "--individual", "mouse", "--predictions"
    )  # the predicted instance has no track: --individual leaves it out
    assert len(with_predictions) == 3
    predictions = imported(slp, tmp_path / "all", "--format", "slp", "--predictions",
                           "--individual", "rival")  # fmt: skip
    assert len(predictions) == 1
    config = yaml.safe_load((tmp_path / "mouse" / "config.yaml").read_text())
    assert list(config["video_sets"]) == [str(video_file.resolve())]


def test_slp_whose_video_moved_next_to_it(lightning_pose: Path, tmp_path: Path) -> None:
    """A lab copies the .slp and its video to another machine: the recorded path is gone."""
    (tmp_path / "rig").mkdir()
    video_file = tmp_path / "rig" / "session1.mp4"
    shutil.copy(lightning_pose / "videos" / "test_vid.mp4", video_file)
    slp = sleap_file(tmp_path / "rig", video_file)
    (tmp_path / "laptop").mkdir()
    for path in (slp, video_file):
        path.rename(tmp_path / "laptop" / path.name)
    project = imported(tmp_path / "laptop" / slp.name, tmp_path / "p", "--individual", "rival")
    assert project.images == ["labeled-data/session1/img00020.png"]


def test_nwb_written_by_sleap_io(two_groups: PoseDataset, tmp_path: Path) -> None:
    """An NWB file as sleap-io writes one from SLEAP labels (PoseTraining + Skeletons)."""
    labels = sleap_io.load_file(str(export_labels(two_groups, tmp_path / "x.slp")))
    sleap_io.save_nwb(labels, str(tmp_path / "from-sleap.nwb"))
    back = import_labels(tmp_path / "from-sleap.nwb", tmp_path / "p", ImportOptions())
    assert back.bodyparts == two_groups.bodyparts
    assert sorted(back.images) == sorted(two_groups.images)


def test_label_studio_written_by_sleap_io(two_groups: PoseDataset, tmp_path: Path) -> None:
    labels = sleap_io.load_file(str(export_labels(two_groups, tmp_path / "x.slp")))
    sleap_io.save_labelstudio(labels, str(tmp_path / "ls.json"))
    back = imported(tmp_path / "ls.json", tmp_path / "p")
    assert back.bodyparts == two_groups.bodyparts  # first-appearance order, not a set's
    expected = by_image(two_groups)
    for image, points in by_image(back).items():
        np.testing.assert_allclose(points, expected[image], atol=1e-4)


def test_label_studio_export_naming_its_images(two_groups: PoseDataset, tmp_path: Path) -> None:
    """Label Studio itself names the picture in ``data`` (an upload URL), not in ``meta``."""
    labels = sleap_io.load_file(str(export_labels(two_groups, tmp_path / "x.slp")))
    sleap_io.save_labelstudio(labels, str(tmp_path / "ls.json"))
    tasks = json.loads((tmp_path / "ls.json").read_text())
    first = [t for t in tasks if "/video0/" in str(t["meta"]["video"]["filename"])]
    for task in first:
        video = task.pop("meta")["video"]
        files = video["filename"]
        name = Path(files[video["frame_idx"]] if isinstance(files, list) else files).name
        task["data"] = {"image": f"/data/upload/1/{name}"}
    (tmp_path / "upload.json").write_text(json.dumps(first))
    folder = two_groups.root / "labeled-data" / "video0"
    back = imported(tmp_path / "upload.json", tmp_path / "p", "--images", str(folder))
    expected = by_image(two_groups)
    assert len(back) == 3
    for image, points in by_image(back).items():
        np.testing.assert_allclose(points, expected[image], atol=1e-4)


def test_yolo_written_by_sleap_io(two_groups: PoseDataset, tmp_path: Path) -> None:
    labels = sleap_io.load_file(str(export_labels(two_groups, tmp_path / "x.slp")))
    sleap_io.save_ultralytics(labels, str(tmp_path / "yolo"), verbose=False)
    back = imported(tmp_path / "yolo", tmp_path / "p")
    assert back.bodyparts == two_groups.bodyparts
    assert set(back.group_names) <= {"train", "val"} and len(back) == len(two_groups)
    # YOLO stores coordinates normalized by the image size, to 6 decimals
    assert (
        np.nanmax(np.abs(np.sort(back.keypoints.ravel()) - np.sort(two_groups.keypoints.ravel())))
        < 0.5
    )


@pytest.mark.parametrize("name", ["labels.pkg.slp", "labels.nwb"])
def test_slp_and_nwb_projects_train_and_evaluate(
    two_groups: PoseDataset, tmp_path: Path, name: str
) -> None:
    out = tmp_path / name
    assert runner.invoke(app, ["data", "export", str(two_groups.root), str(out)]).exit_code == 0
    project = imported(out, tmp_path / "project", "--images", str(two_groups.root))
    run = tmp_path / "run"
    result = train(spec_for(project.root), run, show_progress=False)
    assert result.finished
    [metrics] = evaluate_run(run, device="cpu")
    parts = metrics["partitions"]
    assert parts["train"]["n_images"] + parts["within"]["n_images"] == len(two_groups)
    assert parts["train"]["error_px"] is not None
