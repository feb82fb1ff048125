"""Files sleap-io reads: SLEAP .slp, NWB (ndx-pose), Label Studio JSON, Ultralytics YOLO.

Each loader turns sleap-io's (or h5py's) exceptions on a truncated, foreign or empty file into
one line naming the file. sleap-io is imported here only: ``poseshift analyze`` and training
never load it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py

from poseshift.errors import PoseshiftError

READ_ERRORS = (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError)


def _refuse(path: Path, what: str, exc: Exception) -> PoseshiftError:
    reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
    return PoseshiftError(
        f"{path} cannot be read as {what} ({reason}): it is truncated or not {what}"
    )


def _check_hdf5(path: Path, what: str) -> None:
    if not path.is_file():
        raise PoseshiftError(f"{path} does not exist")
    if not h5py.is_hdf5(path):
        raise PoseshiftError(
            f"{path} is not an HDF5 file, so not {what}: it is truncated or foreign"
        )


def load_slp(path: Path) -> Any:
    import sleap_io

    _check_hdf5(path, "a SLEAP .slp file")
    try:
        return sleap_io.load_slp(str(path), open_videos=False)
    except READ_ERRORS as exc:
        raise _refuse(path, "a SLEAP .slp file", exc) from None


def _nwb_video(series: Any) -> Any:
    """A sleap-io video of an external-file ImageSeries (one video file or a list of images).

    sleap-io 0.9.5 passes the HDF5 list of files itself to its video factory, which fails for
    an ImageSeries of several images, the usual way to store labeled frames.
    """
    import sleap_io

    if series.format != "external":
        raise ValueError(f"ImageSeries {series.name!r} stores pixels inside the file")
    files = [f.decode() if isinstance(f, bytes) else str(f) for f in series.external_file[:]]
    return sleap_io.Video(filename=files if len(files) > 1 else files[0], open_backend=False)


def _check_edges(skeleton: Any, path: Path) -> None:
    nodes = list(skeleton.nodes[:])
    for edge in skeleton.edges[:]:
        unknown = next((int(i) for i in edge if not 0 <= int(i) < len(nodes)), None)
        if unknown is not None:
            raise PoseshiftError(
                f"{path}: skeleton {skeleton.name!r} has an edge to node {unknown}, but its nodes "
                f"are {', '.join(map(str, nodes))} (0 to {len(nodes) - 1}); fix the skeleton"
            )


def load_nwb(path: Path) -> Any:
    """The ndx-pose ``PoseTraining`` of an NWB file as sleap-io ``Labels``."""
    import sleap_io
    from pynwb import NWBHDF5IO
    from sleap_io.io import nwb_annotations as convert

    _check_hdf5(path, "an NWB file")
    with h5py.File(path, "r") as f:
        behavior = f.get("processing/behavior")
        if behavior is None or "PoseTraining" not in behavior:
            raise PoseshiftError(
                f"{path} has no ndx-pose training frames (processing/behavior/PoseTraining); "
                "only labeled training frames can be imported"
            )
    try:
        with NWBHDF5IO(str(path), mode="r", load_namespaces=True) as io:
            behavior = io.read().processing["behavior"]
            training, skeletons = behavior["PoseTraining"], behavior["Skeletons"]
            for skeleton in skeletons.skeletons.values():
                _check_edges(skeleton, path)
            series = list(training.source_videos.image_series.values())
            videos = [_nwb_video(s) for s in series]
            sleap_skeletons = [
                convert.nwb_skeleton_to_sleap_skeleton(s) for s in skeletons.skeletons.values()
            ]
            frames = convert.nwb_training_frames_to_sleap_labeled_frames(
                training.training_frames,
                convert.create_nwb_to_slp_skeleton_map(skeletons, sleap_skeletons),
                dict(zip(series, videos, strict=True)),
            )
    except READ_ERRORS as exc:
        raise _refuse(path, "an NWB file with ndx-pose training frames", exc) from None
    return sleap_io.Labels(frames, videos=videos, skeletons=sleap_skeletons)


def _image_meta(task: dict, images: Path) -> None:
    """A Label Studio export names the image in ``data`` (e.g. ``/data/upload/1/a.png``);
    sleap-io reads ``meta.video``: point it at that file's name inside ``images``."""
    if "video" in task.get("meta", {}):
        return
    named = next((v for v in task.get("data", {}).values() if isinstance(v, str)), None)
    if named is not None:
        filename = str(images / named.replace("\\", "/").split("/")[-1].split("?")[0])
        task["meta"] = {"video": {"filename": filename, "frame_idx": 0, "shape": None}}


def load_labelstudio(path: Path, images: Path) -> Any:
    """Keypoints in the order they first appear (sleap-io's own inference loses it)."""
    from sleap_io.io import labelstudio

    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _refuse(path, "Label Studio JSON", exc) from None
    if not isinstance(tasks, list) or not all(
        isinstance(t, dict) and ("annotations" in t or "completions" in t) for t in tasks
    ):
        raise PoseshiftError(
            f"{path}: Label Studio exports are a JSON list of tasks, each with 'annotations'"
        )
    try:
        names = [
            name
            for task in tasks
            for annotation in task.get("annotations", task.get("completions"))
            for result in annotation["result"]
            if result.get("type") == "keypointlabels"
            for name in result["value"]["keypointlabels"]
        ]
        for task in tasks:
            _image_meta(task, images)
        labels = labelstudio.parse_tasks(tasks, labelstudio.Skeleton(list(dict.fromkeys(names))))
    except READ_ERRORS as exc:
        raise _refuse(path, "Label Studio keypoint JSON", exc) from None
    labels.provenance["filename"] = str(path)
    return labels


def load_yolo(root: Path, split: str) -> Any:
    import sleap_io

    if not (root / "data.yaml").is_file():
        raise PoseshiftError(f"{root} has no data.yaml: point to an Ultralytics YOLO pose dataset")
    try:
        return sleap_io.load_ultralytics(str(root), split=split)
    except READ_ERRORS as exc:
        raise _refuse(root, "an Ultralytics YOLO pose dataset", exc) from None
