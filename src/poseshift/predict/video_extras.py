"""``analyze --adapt`` and ``analyze --reliability``: video analysis plus adaptation / scores.

``analyze_with_extras`` with ``adapt``: each video gets its own adapted run
(``RUN/adapted/<stem>-<sha256[:8]>``, AdaBN on up to ``max_frames`` of its frames,
``poseshift.predict.adapt``), reused while the run, snapshot and video are the same, and is
analyzed with it: the outputs carry the adapted run's scorer, so they never replace the
plain analysis. With ``reliability`` each output gets its ``_reliability.csv``
(``poseshift.predict.reliability``, at the analysis' ``resize`` and precision) unless it is
current.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from poseshift.fsutil import check_output_dir
from poseshift.predict.adapt import adapt_run
from poseshift.predict.frames import probe_video
from poseshift.predict.predictor import run_predictor
from poseshift.predict.reliability import is_current, write_reliability
from poseshift.predict.target_frames import TargetFrames, sha256_file
from poseshift.predict.video import analyze_videos, check_options
from poseshift.run import RunDir


def adapted_run_for(
    run: RunDir, video: Path, *, snapshot: str | int, max_frames: int, frozen: str, device: str
) -> RunDir:
    """The run adapted on ``video`` (made now, or reused), inside ``run``'s adapted/."""
    frames = TargetFrames.open(video, max_frames=max_frames)
    key = f"{video.stem}-{sha256_file(video)[:8]}"
    return adapt_run(
        run.path,
        frames,
        run.adapted_dir(key),
        snapshot=snapshot,
        frozen=frozen,
        device=device,
        overwrite=True,  # this folder belongs to this video: a changed source replaces it
    )


def analyze_with_extras(
    run_dir: str | Path,
    videos: Sequence[str | Path],
    *,
    adapt: bool = False,
    reliability: bool = False,
    snapshot: str | int = "last",
    max_frames: int = 500,
    frozen: str = "refuse",
    device: str = "auto",
    batch_size: int = 8,
    compile: bool | None = None,
    **analyze: Any,
) -> list[Path]:
    """``analyze_videos``, with each video's own adapted run (``adapt``) and reliability.

    Every video is checked before any work. Returns the .h5 paths.
    """
    run = RunDir(run_dir)
    # Bad options fail before an adapted run or any output is written.
    precision, resize = analyze.get("precision", "auto"), analyze.get("resize")
    check_options(batch_size, resize, precision, device, compile, analyze.get("export", ()))
    run.choose_snapshot(snapshot)
    paths = [probe_video(v).path for v in videos]
    if analyze.get("dest"):
        check_output_dir(analyze["dest"], "--dest")
    options = {"snapshot": snapshot, "device": device, "batch_size": batch_size, **analyze}
    if adapt:
        jobs = [
            (
                adapted_run_for(
                    run, v, snapshot=snapshot, max_frames=max_frames, frozen=frozen, device=device
                ),
                [v],
            )
            for v in paths
        ]
    else:
        jobs = [(run, paths)]
    outputs = []
    for job_run, job_videos in jobs:
        h5s = analyze_videos(job_run.path, job_videos, compile=compile, **options)
        if reliability and not all(is_current(h5) for h5 in h5s):
            iteration = job_run.choose_snapshot(snapshot)
            predictor = run_predictor(
                job_run, iteration, device=device, precision=precision, compile=compile
            )
            for video, h5 in zip(job_videos, h5s, strict=True):
                if not is_current(h5):
                    write_reliability(predictor, video, h5, batch_size=batch_size, resize=resize)
        outputs += h5s
    return outputs
