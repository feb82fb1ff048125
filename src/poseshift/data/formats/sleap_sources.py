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


def load_nwb(path: Path) -> Any:
    import sleap_io

    _check_hdf5(path, "an NWB file")
    try:
        with h5py.File(path, "r") as f:
            behavior = f.get("processing/behavior")
            if behavior is None or "PoseTraining" not in behavior:
                raise PoseshiftError(
                    f"{path} has no ndx-pose training frames (processing/behavior/PoseTraining); "
                    "only labeled training frames can be imported"
                )
        return sleap_io.load_nwb(str(path))
    except READ_ERRORS as exc:
        raise _refuse(path, "an NWB file with ndx-pose training frames", exc) from None


def load_labelstudio(path: Path) -> Any:
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
        labels = labelstudio.parse_tasks(tasks, labelstudio.infer_nodes(tasks))
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
