"""DeepLabCut 3.0.2 itself opens what poseshift wrote from the shared openfield project.

The tier (``-m interop``; ``make test`` runs it after the default suite) installs DeepLabCut
in its own venv (``poseshift.bench.dlc3``; reused when it exists) and fails, never skips,
when it cannot. poseshift trains a 3-iteration run, analyzes a 20-frame clip and evaluates;
then DeepLabCut's own functions run on those files as written (``dlc_driver.py``), with the
shuffle and ``modelprefix`` that ``poseshift analyze`` prints.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import write_clip
from poseshift.bench.dlc3 import ensure_dlc_venv
from poseshift.cli import app
from poseshift.data.project import load_project

pytestmark = pytest.mark.interop
DRIVER = Path(__file__).with_name("dlc_driver.py")
runner = CliRunner()


def poseshift(*args: object) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def in_dlc(python: Path, *args: object) -> dict:
    done = subprocess.run(
        [str(python), str(DRIVER), *map(str, args)], capture_output=True, text=True, timeout=900
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


@pytest.fixture(scope="module")
def dlc_python() -> Path:
    return ensure_dlc_venv()  # raises with pip's words when DeepLabCut cannot be installed


@pytest.fixture(scope="module")
def results(openfield: Path, tmp_path_factory, dlc_python: Path) -> dict:
    root = tmp_path_factory.mktemp("interop")
    project = root / "openfield"
    shutil.copytree(openfield, project)
    for path in [project, *project.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    in_dlc(dlc_python, "prepare", project)  # as DeepLabCut 3 saves a project
    videos = root / "videos"
    videos.mkdir()
    clip = write_clip(project / "videos" / "m3v1mp4.mp4", videos / "clip.mp4", frames=20)
    poseshift("split", project, "--scheme", "random", "--shuffles", "1", "--fractions", "0.95")
    run = root / "run"
    poseshift("train", project, "--split", "random-s0", "--backbone", "mobilenetv2_035",
              "--init", "scratch", "--preset", "fast", "--iters", "3", "--batch-size", "2",
              "--crop", "128x128", "--workers", "0", "--out", run)  # fmt: skip
    printed = poseshift("analyze", run, clip, "--no-compile")
    [h5] = videos.glob("clip*.h5")
    [prefix] = re.findall(r"shuffle=1, modelprefix='(.+)'$", printed, re.MULTILINE)
    poseshift("evaluate", run, "--scale-pair", "snout,tailbase")
    coco = root / "coco.json"
    poseshift("data", "export", project, coco)
    poseshift("data", "import", coco, root / "imported", "--images", project)
    job = {
        "config": str(project / "config.yaml"),
        "video": str(clip),
        "video_dir": str(videos),
        "video_stem": "clip",
        "scorer": h5.stem.removeprefix("clip"),
        "shuffle": {"shuffle": 1, "modelprefix": prefix},
        "predictions": str(run / "eval" / "snapshot-0000003" / "predictions.h5"),
        "plots": str(root / "evaluation-plots"),
        "coco_config": str(root / "imported" / "config.yaml"),
        "dlc_out": str(root / "dlc-analyzed"),
    }
    (root / "job.json").write_text(json.dumps(job))
    return {"job": job, "dlc": in_dlc(dlc_python, "check", root / "job.json")}


def outcome(results: dict, name: str) -> dict:
    got = results["dlc"][name]
    assert got["ok"], (
        f"deeplabcut's {name} failed on poseshift's files: {got['error']}\n" + (got["trace"])
    )
    return got


def test_poseshift_names_outputs_as_deeplabcut_would(results: dict) -> None:
    assert results["job"]["scorer"] == "DLC_mobnet_35_openfieldOct30shuffle1_3"
    assert Path(results["job"]["predictions"]).is_file()


def test_load_analyzed_data(results: dict) -> None:
    got = outcome(results, "load_analyzed_data")
    assert got["shape"] == [20, 12] and got["dtype"] == "float32"
    assert got["scorer"] == results["job"]["scorer"]


def test_filterpredictions(results: dict) -> None:
    assert outcome(results, "filterpredictions")["files"] == [
        f"clip{results['job']['scorer']}_filtered.h5"
    ]


def test_filterpredictions_when_the_project_has_its_own_pytorch_shuffle(results: dict) -> None:
    assert outcome(results, "filterpredictions(engine=TF)")["files"] == [
        f"clip{results['job']['scorer']}_filtered.h5"
    ]


def test_plot_trajectories(results: dict) -> None:
    assert len(outcome(results, "plot_trajectories")["files"]) >= 3  # trajectory, likelihood, hist


def test_analyzeskeleton(results: dict) -> None:
    got = outcome(results, "analyzeskeleton")
    assert got["bones"] == ["leftear_rightear", "snout_tailbase"]


def test_create_labeled_video_by_shuffle_and_by_init_weights(results: dict) -> None:
    got = outcome(results, "create_labeled_video")
    assert got["made"] == [True, True] and len(got["files"]) == 1


def test_evaluation_plotting_on_predictions_h5(results: dict) -> None:
    got = outcome(results, "plot_evaluation_results")
    assert got["rows"] == 116 and got["images"] == 4  # every row joined DeepLabCut's labels


def test_check_labels_and_create_training_dataset_on_an_imported_project(results: dict) -> None:
    got = outcome(results, "check_labels+create_training_dataset")
    assert got["labeled"] == 116 and got["training_sets"] >= 1
    assert len(got["pytorch_config"]) == 1


def test_a_deeplabcut_trained_project_reads_without_complaint(results: dict) -> None:
    """training-datasets/, dlc-models-pytorch/ (pytorch_config.yaml) and DeepLabCut 3's
    config keys are all there after create_training_dataset: poseshift still reads it."""
    outcome(results, "check_labels+create_training_dataset")
    imported = Path(results["job"]["coco_config"]).parent
    assert (imported / "training-datasets").is_dir()
    dataset = load_project(imported)
    assert len(dataset) == 116 and dataset.bodyparts[0] == "snout"
    assert "frames: 116" in poseshift("data", "info", imported)
    assert pd.read_hdf(results["job"]["predictions"]).index.nlevels == 3


def test_a_deeplabcut_analyze_videos_output_opens_in_label_video(results: dict) -> None:
    got = outcome(results, "analyze_videos")
    h5 = Path(got["h5"])
    assert got["dtype"] == "float32" and h5.name.startswith("clipDLC_Resnet50_")
    imported = Path(results["job"]["coco_config"]).parent
    poseshift("label-video", imported, results["job"]["video"], "--poses", h5, "--pcutoff", "0")
    labeled = h5.with_name(f"{h5.stem}_labeled.mp4")
    capture = cv2.VideoCapture(str(labeled))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 20
    capture.release()
