"""Video poses for SLEAP and NWB users: ``analyze --export slp,nwb``.

Next to DeepLabCut's ``<video><scorer>.h5`` these write

* ``<video><scorer>.predictions.slp``: one SLEAP ``PredictedInstance`` per frame with a pose
  (point scores = likelihoods, instance score = their mean), referencing the video;
* ``<video><scorer>.nwb``: an ndx-pose ``PoseEstimation`` (one ``PoseEstimationSeries`` per
  bodypart: x, y in pixels, the likelihood as confidence, a timestamp per frame from the
  video's frame rate), with the model's name as ``scorer``, poseshift as source software and
  the project's skeleton; in a processing module named as sleap-io names (and reads) them.

Both are written under temporary names and renamed. sleap-io and pynwb are imported only
when an export is asked for.
"""

from __future__ import annotations

import datetime
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poseshift.errors import PoseshiftError
from poseshift.fsutil import atomic_path
from poseshift.predict.outputs import export_paths

EXPORTS = ("slp", "nwb")


def parse_exports(text: str | None) -> list[str]:
    """``"slp,nwb"`` as a list; unknown names are a one-line error."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in EXPORTS]
    if unknown:
        raise PoseshiftError(f"--export {unknown[0]!r} is not one of {', '.join(EXPORTS)}")
    return list(dict.fromkeys(names))


@dataclass
class PoseRecord:
    """What the exports need: poses (N, K, 3) = x, y, likelihood and the video's facts."""

    poses: np.ndarray
    bodyparts: list[str]
    skeleton: list[tuple[str, str]]
    video: Path
    fps: float
    size: tuple[int, int]  # (width, height)
    scorer: str  # the model's name


def project_skeleton(project: str | Path, bodyparts: Sequence[str]) -> list[tuple[str, str]]:
    """config.yaml's skeleton (edges between the network's bodyparts), or none without it."""
    from poseshift.data.project_config import read_config

    if not (Path(project) / "config.yaml").is_file():
        return []
    pairs = read_config(Path(project)).get("skeleton") or []
    return [(str(a), str(b)) for a, b in pairs if a in bodyparts and b in bodyparts]


def write_exports(record: PoseRecord, h5: Path, exports: Sequence[str]) -> list[Path]:
    """Write the asked-for files next to ``h5``; return their paths."""
    paths = export_paths(h5)
    writers = {"slp": write_slp, "nwb": write_nwb}
    for name in exports:
        writers[name](record, paths[name])
    return [paths[name] for name in exports]


def write_slp(record: PoseRecord, out: Path) -> Path:
    import sleap_io

    skeleton = sleap_io.Skeleton(
        nodes=list(record.bodyparts), edges=[list(e) for e in record.skeleton]
    )
    video = sleap_io.Video(filename=str(record.video.resolve()), open_backend=False)
    frames = []
    for index, pose in enumerate(record.poses):
        if np.isnan(pose[:, :2]).all():
            continue
        instance = sleap_io.PredictedInstance.from_numpy(
            pose[:, :2].astype(np.float64),
            skeleton=skeleton,
            point_scores=pose[:, 2].astype(np.float64),
            score=float(np.nanmean(pose[:, 2])),
        )
        frames.append(sleap_io.LabeledFrame(video=video, frame_idx=index, instances=[instance]))
    labels = sleap_io.Labels(frames, videos=[video], skeletons=[skeleton])
    labels.provenance["scorer"] = record.scorer
    with atomic_path(out) as tmp:
        sleap_io.save_slp(labels, str(tmp), verbose=False)
    return out


def write_nwb(record: PoseRecord, out: Path) -> Path:
    from ndx_pose import PoseEstimation, PoseEstimationSeries, Skeleton, Skeletons
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.image import ImageSeries

    from poseshift import __version__

    nwbfile = NWBFile(
        session_description=f"poses of {record.video.name} by {record.scorer}",
        identifier=str(uuid.uuid4()),
        session_start_time=datetime.datetime.now(datetime.timezone.utc),
    )
    camera = nwbfile.create_device(name="camera_0", description=f"camera of {record.video.name}")
    index = {name: i for i, name in enumerate(record.bodyparts)}
    skeleton = Skeleton(
        name=record.scorer,
        nodes=list(record.bodyparts),
        edges=np.array([[index[a], index[b]] for a, b in record.skeleton], dtype="uint8").reshape(
            -1, 2
        ),
    )
    behavior = nwbfile.create_processing_module(name="behavior", description="skeletons")
    behavior.add(Skeletons(skeletons=[skeleton]))
    timestamps = np.arange(len(record.poses), dtype=np.float64) / record.fps
    source = ImageSeries(
        name=record.video.stem,
        description=f"the analyzed video {record.video.name}",
        unit="n.a.",
        format="external",
        external_file=[str(record.video.resolve())],
        starting_frame=[0],
        dimension=[record.size[0], record.size[1]],
        timestamps=timestamps,
        device=camera,
    )
    nwbfile.add_acquisition(source)
    series = [
        PoseEstimationSeries(
            name=name,
            description=f"{name} in video pixels",
            data=record.poses[:, k, :2].astype(np.float64),
            unit="pixels",
            reference_frame="video pixels as in the DeepLabCut .h5, origin at the top left",
            timestamps=timestamps,
            confidence=record.poses[:, k, 2].astype(np.float64),
            confidence_definition="likelihood as in the DeepLabCut .h5 (scoremap peak, 0-1)",
        )
        for k, name in enumerate(record.bodyparts)
    ]
    with warnings.catch_warnings():
        # ndx-pose 0.2 deprecates original_videos for source_video; sleap-io reads only it.
        warnings.filterwarnings(
            "ignore", message=".*'original_videos'", category=DeprecationWarning
        )
        estimation = PoseEstimation(
            name="PoseEstimation",
            pose_estimation_series=series,
            description=f"poses estimated by poseshift model {record.scorer}",
            original_videos=[str(record.video.resolve())],  # what sleap-io reads
            source_video=source,
            device=camera,
            scorer=record.scorer,
            source_software="poseshift",
            source_software_version=__version__,
            skeleton=skeleton,
        )
    # sleap-io reads PoseEstimation from modules named SLEAP_VIDEO_<n>_<video stem>.
    module = nwbfile.create_processing_module(
        name=f"SLEAP_VIDEO_000_{record.video.stem}", description=f"poses in {record.video.name}"
    )
    module.add(estimation)
    with atomic_path(out) as tmp, NWBHDF5IO(str(tmp), mode="w") as io:
        io.write(nwbfile)
    return out
