"""``poseshift outliers``: the frames of a video most worth labeling, extracted for DeepLabCut.

The video is analyzed (or its analysis reused), every frame scored (``reliability``), and
the ``n`` least reliable frames picked, at least ``min_gap`` frames apart so that one bad
stretch does not take every pick. They are extracted as DeepLabCut's
``extract_outlier_frames`` does, so its labeling GUI (``refine_labels``, napari-deeplabcut)
opens them with the network's guesses as a starting point:

* ``PROJECT/labeled-data/<video stem>/img<frame>.png``, the frame number zero-padded to
  ``ceil(log10(number of frames))`` digits (DeepLabCut's ``strwidth``); an image already
  there is kept;
* ``machinelabels-iter<config iteration>.h5`` (key ``df_with_missing``) and
  ``machinelabels.csv``: the predicted x, y, likelihood of the picked frames, rows
  ``(labeled-data, <video stem>, img<frame>.png)``, appended to an existing file (its rows
  first, duplicates dropped, as DeepLabCut does); CollectedData is never touched. The file
  holds one scorer's guesses: one of another snapshot, run or bodyparts is refused (pandas
  would widen it to a second, half-empty column block);
* the video is added to config.yaml's ``video_sets`` (``crop: 0, width, 0, height``) if it
  is not there, as DeepLabCut does, since its training-set tools find label folders there.

The project's bodyparts must be the run's, checked before any work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from poseshift.data.hdf import read_hdf_safely
from poseshift.data.project import HDF_KEY
from poseshift.data.project_config import read_config
from poseshift.errors import PoseshiftError
from poseshift.fsutil import write_atomic
from poseshift.predict.dlc_shuffle import dlc_scorer, project_naming
from poseshift.predict.frames import probe_video
from poseshift.predict.outputs import poses_frame
from poseshift.predict.predictor import run_predictor
from poseshift.predict.reliability import is_current, read_reliability, write_reliability
from poseshift.predict.video import analyze_videos
from poseshift.run import RunDir


@dataclass(frozen=True)
class Extracted:
    folder: Path  # labeled-data/<video stem>
    frames: list[int]  # picked frame numbers, most unreliable first
    images: list[Path]
    machine_labels: Path


def pick_frames(score: np.ndarray, n: int, min_gap: int = 1) -> list[int]:
    """The ``n`` highest-scoring frames, greedily, each at least ``min_gap`` from the others."""
    picked: list[int] = []
    for frame in np.argsort(-score, kind="stable").tolist():
        if all(abs(frame - other) >= min_gap for other in picked):
            picked.append(frame)
            if len(picked) == n:
                break
    return picked


def image_name(frame: int, frame_count: int) -> str:
    """DeepLabCut's ``img`` + frame number padded to ceil(log10(frames)) digits + ``.png``."""
    width = math.ceil(math.log10(frame_count)) if frame_count > 1 else 1
    return f"img{str(frame).zfill(width)}.png"


def _read_frames(video: Path, frames: list[int]) -> dict[int, np.ndarray]:
    """The BGR frames of these numbers, decoded in order (no seeking: exact frames)."""
    wanted, found, index = set(frames), {}, 0
    capture = cv2.VideoCapture(str(video))
    try:
        while index <= max(frames) and capture.grab():
            if index in wanted:
                ok, image = capture.retrieve()
                if ok:
                    found[index] = image
            index += 1
    finally:
        capture.release()
    return found


def _add_video(config_path: Path, video: Path, width: int, height: int) -> None:
    """config.yaml's video_sets gains the video (round-trip YAML: comments are kept)."""
    from ruamel.yaml import YAML

    yaml = YAML()
    config = yaml.load(config_path.read_text())
    videos = config.get("video_sets") or {}
    if str(video) in videos or any(Path(str(v)).stem == video.stem for v in videos):
        return
    videos[str(video)] = {"crop": f"0, {width}, 0, {height}"}
    config["video_sets"] = videos
    write_atomic(config_path, lambda tmp: yaml.dump(config, tmp))


def _machine_labels(path: Path, scorer: str, bodyparts: list[str]) -> pd.DataFrame | None:
    """The rows already in ``path``, refused unless they are ``scorer``'s on ``bodyparts``."""
    if not path.is_file():
        return None
    old = read_hdf_safely(path, HDF_KEY, what="machine labels")
    ours = poses_frame(scorer, bodyparts, np.zeros((1, len(bodyparts), 3))).columns
    if not old.columns.equals(ours):
        theirs = [list(dict.fromkeys(old.columns.get_level_values(i))) for i in (0, 1)]
        raise PoseshiftError(
            f"{path} holds guesses of {theirs[0]} on {theirs[1]}, not of {scorer!r} on "
            f"{bodyparts} (one scorer per file): refine them and raise config.yaml's "
            "iteration (DeepLabCut's merge_datasets), or move the file away"
        )
    return old


def extract_outliers(
    run_dir: str | Path,
    video: str | Path,
    *,
    n: int = 20,
    min_gap: int | None = None,
    project: str | Path | None = None,
    dest: str | Path | None = None,
    batch_size: int = 8,
    device: str = "auto",
    snapshot: str | int = "last",
    compile: bool | None = None,
) -> Extracted:
    """Analyze ``video`` with the run, score it, extract the ``n`` least reliable frames.

    ``project`` defaults to the run's (its config.yaml and labeled-data/); ``dest`` is where
    the analysis goes (default: the video's folder). ``min_gap`` defaults to a fifth of the
    frames per pick, so picks cover the video.
    """
    run = RunDir(run_dir)
    video = Path(video)
    if n < 1:
        raise PoseshiftError(f"--n {n}: pick at least one frame")
    spec, bodyparts = run.spec(), run.bodyparts()
    root = Path(project or spec.project)
    config = read_config(root)  # a bad or missing config.yaml fails before any work
    if config["bodyparts"] != bodyparts:
        raise PoseshiftError(
            f"{root / 'config.yaml'} has bodyparts {config['bodyparts']} but run {run.path} "
            f"predicts {bodyparts}: extract into a project with the run's bodyparts"
        )
    iteration = run.choose_snapshot(snapshot)
    # The name analyze_videos gives the poses, known before any work is done.
    scorer = dlc_scorer(spec, iteration, project_naming(spec.project), run.adaptation_tag())
    folder = root / "labeled-data" / video.stem
    machine_file = folder / f"machinelabels-iter{int(config.get('iteration') or 0)}.h5"
    old = _machine_labels(machine_file, scorer, bodyparts)
    info = probe_video(video)
    [h5] = analyze_videos(
        run.path, [video], batch_size=batch_size, device=device, dest=dest, snapshot=snapshot,
        show_progress=False, compile=compile,
    )  # fmt: skip
    if not is_current(h5):
        predictor = run_predictor(run, iteration, device=device, compile=compile)
        write_reliability(predictor, video, h5, batch_size=batch_size)
    table = read_reliability(h5)
    poses = read_hdf_safely(h5, HDF_KEY, what="analysis file")
    count = len(poses)
    gap = min_gap if min_gap is not None else max(1, count // (5 * n))
    frames = pick_frames(table["unreliability"].to_numpy(), n, gap)
    decoded = _read_frames(video, frames)
    names = {f: image_name(f, count) for f in frames}
    images = []
    for frame in frames:
        path = folder / names[frame]
        if not path.exists() and frame in decoded:
            image = decoded[frame]
            write_atomic(path, lambda tmp, image=image: _write_png(tmp, image))  # type: ignore[misc]  # default-bound lambda
        images.append(path)
    rows = pd.MultiIndex.from_tuples([("labeled-data", video.stem, names[f]) for f in frames])
    machine = poses_frame(
        scorer,
        bodyparts,
        poses.iloc[frames].to_numpy().reshape(len(frames), -1, 3),
        rows,
    )
    if old is not None:
        machine = pd.concat([old, machine])
        machine = machine[~machine.index.duplicated(keep="first")]
    write_atomic(machine_file, lambda tmp: machine.to_hdf(tmp, key=HDF_KEY, mode="w"))
    write_atomic(folder / "machinelabels.csv", lambda tmp: machine.to_csv(tmp))
    _add_video(root / "config.yaml", video.resolve(), info.width, info.height)
    return Extracted(folder, frames, images, machine_file)


def _write_png(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise PoseshiftError(f"cannot encode frame as PNG for {path}")
    path.write_bytes(data.tobytes())
