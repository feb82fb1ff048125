"""Video analysis with DeepLabCut-compatible outputs.

``analyze_videos`` mirrors DeepLabCut's ``analyze_videos``: per video it writes
``<video stem><scorer>.h5`` (key ``df_with_missing``, integer index 0..N-1,
columns scorer / bodyparts / coords, float32), the same table as ``.csv``, and
``<video stem><scorer>_meta.pickle`` (``{"data": {...}}`` with DeepLabCut 3's keys, which its
labeled-video and plotting tools read for fps, frame size and cropping). The scorer is the one
DeepLabCut derives for the run's network (``predict.dlc_shuffle``), whose model folder is
written to ``RunDir.dlc_model_prefix`` so DeepLabCut's own video tools find the files as
written. A decoder thread feeds uint8 batches (``poseshift.predict.frames``) to the run's
``Predictor`` (``predict_video``).
"""

from __future__ import annotations

import pickle
import time
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from poseshift.data.hdf import read_hdf_safely
from poseshift.data.project import HDF_KEY
from poseshift.device import check_precision, pick_device
from poseshift.fsutil import check_output_dir, file_identity, write_atomic
from poseshift.predict.dlc_shuffle import (
    dlc_net_type,
    dlc_scorer,
    project_naming,
    write_model_folder,
)
from poseshift.predict.frames import (
    FrameBatches,
    VideoInfo,
    check_batch_size,
    check_resize,
    probe_video,
    resize_factor,
)
from poseshift.predict.int8 import Agreement, calibrate_on_video, check_int8
from poseshift.predict.outputs import (
    check_outputs,
    check_scorer,
    forget_source,
    has_exports,
    is_reusable,
    meta_path,
    note_derived,
    output_path,
    poses_frame,
    read_source,
    record_source,
    write_poses,
)
from poseshift.predict.pose_formats import (
    PoseRecord,
    parse_exports,
    project_skeleton,
    write_exports,
)
from poseshift.predict.predictor import Predictor, autocast_name, run_predictor
from poseshift.run import RunDir
from poseshift.spec import RunSpec, run_hash


@dataclass
class VideoPoses:
    """Poses (N, K, 3) = x, y, likelihood in original video pixels, one row per decoded frame."""

    poses: np.ndarray
    info: VideoInfo
    input_size: tuple[int, int]  # (W, H) the network saw
    seconds: float  # wall time from the first decoded frame to the last pose on the host
    int8: Agreement | None = None  # int8 against fp32 on the frames after calibration

    @property
    def fps(self) -> float:
        return len(self.poses) / max(self.seconds, 1e-9)


def predict_video(
    predictor: Predictor,
    video: str | Path,
    *,
    batch_size: int = 8,
    resize: tuple[int, int] | None = None,
    max_frames: int | None = None,
    show_progress: bool = False,
) -> VideoPoses:
    """Poses for every decodable frame (or the first ``max_frames``).

    Frames are resized by the predictor's input scale (the training ``global_scale``) or to
    ``resize`` (W, H).
    """
    info = probe_video(video)
    size = predictor.input_size(info.width, info.height, resize)
    factor = resize_factor(info.width, info.height, size)
    scale = torch.tensor(factor, dtype=torch.float32, device=predictor.device)
    batches = FrameBatches(info.path, batch_size, size, max_frames, pin_memory=predictor.cuda)
    total = info.frame_count if max_frames is None else min(max_frames, info.frame_count)
    chunks = [torch.zeros(0, predictor.num_keypoints, 3, device=predictor.device)]
    check = None
    if predictor.int8:  # quantized on this video's own first frames
        status = f"int8: quantizing on {info.path.name}'s first frames, compiling"
        with Console(stderr=True).status(status) if show_progress else nullcontext():
            check = calibrate_on_video(predictor, info.path, batch_size=batch_size, size=size)
    if show_progress and predictor.network is not predictor.model:  # seconds of silence else
        with Console(stderr=True).status(
            f"compiling the network for {size[0]}x{size[1]} frames (once per size)"
        ):
            predictor.warm_up(batch_size, size)
    predictor.warm_up(batch_size, size)  # a no-op once warm
    with _Progress(info.path.name, total, show_progress) as (progress, task):
        start, done = time.perf_counter(), 0
        for batch in batches:
            count = len(batch)
            if count < batch_size:  # a short last batch would cost a second compilation
                batch = torch.cat([batch, batch[-1:].expand(batch_size - count, -1, -1, -1)])
            chunks.append(predictor.predict_batch(batch, scale)[:count])
            done += count
            progress.update(task, completed=done, fps=done / (time.perf_counter() - start))
        # One synchronizing copy at the end keeps CUDA busy while frames are decoded.
        poses = torch.cat(chunks).float().cpu().numpy()
        seconds = time.perf_counter() - start
    return VideoPoses(poses, info, size, seconds, check)


class _Progress:
    """A rich progress bar with frames/s, or nothing when disabled (library use, tests)."""

    def __init__(self, name: str, total: int, enabled: bool) -> None:
        self.progress = Progress(
            TextColumn(f"[bold]{name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[fps]:.1f} fps"),
            TimeElapsedColumn(),
            disable=not enabled,
        )
        self.task = self.progress.add_task(name, total=total or None, fps=0.0)

    def __enter__(self) -> tuple[Progress, TaskID]:
        self.progress.__enter__()
        return self.progress, self.task

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)


def analyze_videos(
    run_dir: str | Path,
    videos: Sequence[str | Path],
    *,
    batch_size: int = 8,
    resize: tuple[int, int] | None = None,
    device: str = "auto",
    dest: str | Path | None = None,
    snapshot: str | int = "last",
    precision: str = "auto",
    overwrite: bool = False,
    show_progress: bool = True,
    compile: bool | None = None,
    export: Sequence[str] = (),
    scorer: str | None = None,
) -> list[Path]:
    """Write DeepLabCut-compatible poses for each video; return the .h5 paths.

    ``export`` names more formats written next to each .h5 (``slp``, ``nwb``:
    ``predict.pose_formats``). ``scorer`` replaces the name DeepLabCut derives
    (``DLC_<net>_<Task><date>shuffle<N>_<it>``) in file names and columns; DeepLabCut then
    finds the files through
    ``init_weights=<scorer without DLC_>`` (create_labeled_video) or the scorer itself
    (load_analyzed_data), not through a shuffle.

    All videos are checked before the model loads (a bad file fails in seconds, writing
    nothing), the model loads once for all of them, and a video's existing output is reused
    (unless ``overwrite``) only when its record (``<video><scorer>.json``) shows the same
    video file, snapshot file, run and options. Exports always hold the poses beside them: the
    record lists those made from its poses, new poses delete the old ones, and an export
    missing beside reused poses is made from the .h5. A video with fewer decodable frames
    than its container claims is analyzed up to the last good frame, with a warning.
    """
    run = RunDir(run_dir)
    # Every option is checked here, before any output is touched (forget_source below).
    export = check_options(batch_size, resize, precision, device, compile, export)
    spec = run.spec()
    iteration = run.choose_snapshot(snapshot)
    bodyparts = run.bodyparts()
    infos = [probe_video(v) for v in videos]
    for folder in {Path(dest)} if dest else {info.path.parent for info in infos}:
        check_output_dir(folder, "--dest")  # before a whole video is analyzed
    adapted = run.adaptation_tag()
    naming = None if scorer else project_naming(spec.project)
    name = check_scorer(scorer) if scorer else dlc_scorer(spec, iteration, naming or {}, adapted)
    outputs = [output_path(info.path, name, dest) for info in infos]
    identity = run_hash(spec) + adapted  # recipe, and what an adapted run was adapted on
    check_outputs([i.path for i in infos], outputs, overwrite, identity)
    options = {  # what changes the poses (not batch size, not compilation)
        "run": identity,
        "snapshot": file_identity(run.snapshot_path(iteration)),
        "autocast": autocast_name(precision, pick_device(device)),
        "resize": list(resize) if resize else None,
    }
    sources = [{"video": file_identity(i.path), **options} for i in infos]
    todo, reused = [], []
    for info, out, source in zip(infos, outputs, sources, strict=True):
        if overwrite or not is_reusable(out, source):
            todo.append((info, out, source))
        elif not has_exports(out, export):  # the same poses: only the exports are made
            reused.append((info, out))
    skeleton = project_skeleton(spec.project, bodyparts) if export else []

    def write_formats(info: VideoInfo, out: Path, poses: np.ndarray, names: list[str]) -> None:
        size = (info.width, info.height)
        record = PoseRecord(poses, bodyparts, skeleton, info.path, info.fps, size, name)
        write_exports(record, out, names)

    # Cheap, and kept in step with the snapshot every time; an adapted run's name cannot be
    # derived from a shuffle, so it gets none.
    if naming is not None and not adapted:
        write_model_folder(
            run.dlc_model_prefix(iteration),
            spec=spec,
            iteration=iteration,
            naming=naming,
            bodyparts=bodyparts,
            snapshot=run.snapshot_path(iteration),
        )
    for info, out in reused:
        table = read_hdf_safely(out, HDF_KEY, what="analysis file")
        poses = table.to_numpy(np.float32).reshape(len(table), len(bodyparts), 3)
        made = (read_source(out) or {}).get("exports") or []
        missing = [fmt for fmt in export if not has_exports(out, [fmt])]
        write_formats(info, out, poses, missing)
        note_derived(out, "exports", list(dict.fromkeys([*made, *missing])))
    if not todo:
        return outputs
    predictor = run_predictor(run, iteration, device=device, precision=precision, compile=compile)
    for info, out, source in todo:
        forget_source(out)
        started = time.time()
        result = predict_video(
            predictor, info.path, batch_size=batch_size, resize=resize, show_progress=show_progress
        )
        if len(result.poses) < info.frame_count:
            warnings.warn(
                f"{info.path}: decoded {len(result.poses)} of {info.frame_count} frames (the "
                "file is truncated or damaged); poses cover the readable frames only",
                stacklevel=2,
            )
        if result.int8 is not None:
            _report_int8(info.path, result.int8, show_progress)
        meta = _metadata(
            spec,
            name,
            result,
            batch_size=batch_size,
            started=started,
            bodyparts=bodyparts,
            iteration=iteration,
            project_iteration=naming["iteration"] if naming else 0,
        )
        write_atomic(
            meta_path(out),
            lambda tmp, meta=meta: tmp.write_bytes(pickle.dumps(meta, pickle.HIGHEST_PROTOCOL)),  # type: ignore[misc]  # default-bound lambda
        )
        write_poses(out, poses_frame(name, bodyparts, result.poses))
        write_formats(info, out, result.poses, export)
        # The record goes last: it is what marks a video as analyzed from this source, and
        # lists the exports made from these very poses (forget_source deleted older ones).
        record_source(out, {**source, "exports": export})
    return outputs


def check_options(
    batch_size: int,
    resize: tuple[int, int] | None,
    precision: str,
    device: str,
    compile: bool | None,
    export: Sequence[str],
) -> list[str]:
    """Refuse bad analysis options in one line before any work; return the export names."""
    check_batch_size(batch_size)
    check_resize(resize)
    check_precision(precision, inference=True)
    if precision == "int8":
        check_int8(pick_device(device), compile is not False)
    return parse_exports(",".join(export))


def _metadata(
    spec: RunSpec,
    scorer: str,
    result: VideoPoses,
    *,
    batch_size: int,
    started: float,
    bodyparts: list[str],
    iteration: int,
    project_iteration: int,
) -> dict:
    """``<video><scorer>_meta.pickle`` with exactly the keys DeepLabCut 3 writes (plain types).

    Its ``pytorch-config`` (DeepLabCut's model config) describes the poseshift network.
    """
    info = result.info
    config = {
        "net_type": dlc_net_type(spec.backbone),
        "method": "bu",
        "metadata": {
            "project_path": str(spec.project),
            "bodyparts": bodyparts,
            "unique_bodyparts": [],
            "individuals": ["animal"],
            "with_identity": None,
        },
        "poseshift": {
            "backbone": spec.backbone,
            "init": spec.init,
            "run": run_hash(spec),
            "snapshot": iteration,
            "input_size": list(result.input_size),
            **({"int8_agreement": result.int8.to_dict()} if result.int8 else {}),
        },
    }
    return {
        "data": {
            "start": started,
            "stop": time.time(),
            "run_duration": result.seconds,
            "Scorer": scorer,
            "pytorch-config": config,
            "fps": info.fps,
            "batch_size": batch_size,
            "frame_dimensions": (info.width, info.height),
            "nframes": len(result.poses),
            "iteration (active-learning)": project_iteration,
            "training set fraction": spec.fraction,
            "cropping": False,
            "cropping_parameters": [0, info.width, 0, info.height],
            "individuals": ["animal"],
            "bodyparts": bodyparts,
            "unique_bodyparts": [],
        }
    }


def _report_int8(video: Path, check: Agreement, show: bool) -> None:
    """Print the measured int8 agreement; warn where it misses the accuracy gate."""
    if show:
        Console(stderr=True).print(f"{video.name}: {check.describe()}")
    if not check.passes:
        warnings.warn(
            f"{video}: int8 poses miss the accuracy gate ({check.describe()}); analyze with "
            "--precision bf16 or fp32 where every keypoint matters",
            stacklevel=3,
        )
