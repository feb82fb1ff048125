"""``poseshift analyze``, ``label-video`` and ``export``: use a trained run on videos."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import typer
from rich.console import Console

from poseshift.cli.train import parse_size
from poseshift.memory_policy import use_memory_policy

console = Console()

RUN_HELP = "Run directory made by 'poseshift train'."
SNAPSHOT_HELP = "Iteration number of the snapshot, or 'last'."
PRECISION_HELP = (
    "fp32, bf16, fp16, int8 or auto (bf16/fp16 autocast on CUDA, fp32 on CPU); int8: CPU "
    "only, calibrated on each video's first frames, prints its agreement with fp32."
)
COMPILE_HELP = "torch.compile the network (default: on CPU; faster after a one-off compile)."
SCORER_HELP = (
    "Scorer in file names and columns, DLC_... (default: the name DeepLabCut derives, "
    "DLC_<net>_<Task><date>shuffle<N>_<iteration>)."
)


def analyze(
    run_dir: Path = typer.Argument(..., help=RUN_HELP),
    videos: list[Path] = typer.Argument(..., help="Video files to analyze."),
    batch_size: int = typer.Option(8, help="Frames per network batch."),
    resize: str | None = typer.Option(
        None, help="Resize frames to WxH (default: the training global_scale)."
    ),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1 ..."),
    dest: Path | None = typer.Option(None, help="Output folder (default: each video's folder)."),
    snapshot: str = typer.Option("last", help=SNAPSHOT_HELP),
    precision: str = typer.Option("auto", help=PRECISION_HELP),
    overwrite: bool = typer.Option(False, help="Re-analyze videos that already have poses."),
    compile: bool | None = typer.Option(None, "--compile/--no-compile", help=COMPILE_HELP),
    export: str | None = typer.Option(
        None, "--export", help="Also write slp (SLEAP predictions) and/or nwb (ndx-pose): slp,nwb."
    ),
    scorer: str | None = typer.Option(None, help=SCORER_HELP),
    adapt: bool = typer.Option(
        False, help="Adapt BatchNorm to each video first (AdaBN; kept in RUN/adapted/)."
    ),
    reliability: bool = typer.Option(
        False, help="Also write <output>_reliability.csv: a per-frame reliability score."
    ),
    frozen_batchnorm: str = typer.Option(
        "refuse", help="With --adapt, for runs trained with frozen BatchNorm: refuse or adapt."
    ),
) -> None:
    """Write DeepLabCut-compatible poses (<video><scorer>.h5 / .csv / _meta.pickle) per video."""
    use_memory_policy(huge_pages=True)  # before torch loads
    from poseshift.predict.pose_formats import parse_exports
    from poseshift.predict.video import analyze_videos
    from poseshift.predict.video_extras import analyze_with_extras
    from poseshift.run import RunDir

    analyzer = (
        partial(analyze_with_extras, adapt=adapt, reliability=reliability, frozen=frozen_batchnorm)
        if adapt or reliability
        else analyze_videos
    )
    outputs = analyzer(
        run_dir,
        videos,
        batch_size=batch_size,
        resize=parse_size(resize),
        device=device,
        dest=dest,
        snapshot=snapshot,
        precision=precision,
        overwrite=overwrite,
        compile=compile,
        export=parse_exports(export),
        scorer=scorer,
    )
    for path in outputs:
        console.print(f"poses in {path}")
    if scorer is not None or adapt:  # names no shuffle folder derives
        for video, path in zip(videos, outputs, strict=True):
            init_weights = path.stem.removeprefix(video.stem).removeprefix("DLC_")
            console.print(
                f"DeepLabCut finds {path.name} with init_weights={init_weights!r}", soft_wrap=True
            )
    else:
        run = RunDir(run_dir)
        prefix = run.dlc_model_prefix(run.choose_snapshot(snapshot)).resolve()
        console.print(
            f"DeepLabCut finds them with shuffle={run.spec().shuffle}, modelprefix={str(prefix)!r}",
            soft_wrap=True,  # one line: the path is copied from it
        )


def label_video(
    run_dir: Path = typer.Argument(..., help=RUN_HELP),
    video: Path = typer.Argument(..., help="Video to draw on (analyzed first if needed)."),
    poses: Path | None = typer.Option(
        None,
        help="Draw this DeepLabCut-layout .h5 (e.g. DeepLabCut's analyze_videos output) instead "
        "of analyzing; RUN_DIR may then be the DeepLabCut project folder.",
    ),
    pcutoff: float | None = typer.Option(
        None, help="Hide keypoints below this likelihood (default: config.yaml's pcutoff)."
    ),
    dest: Path | None = typer.Option(None, help="Output folder (default: the video's folder)."),
    snapshot: str = typer.Option("last", help=SNAPSHOT_HELP),
    batch_size: int = typer.Option(8, help="Frames per network batch, if analysis runs."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1 ..."),
    precision: str = typer.Option("auto", help=PRECISION_HELP),
    compile: bool | None = typer.Option(None, "--compile/--no-compile", help=COMPILE_HELP),
    scorer: str | None = typer.Option(None, help=SCORER_HELP),
) -> None:
    """Write <video><scorer>_labeled.mp4 with keypoints and the project's skeleton."""
    use_memory_policy(huge_pages=True)  # before torch loads
    from poseshift.predict.labeled_video import label_video as make_labeled_video

    path = make_labeled_video(
        run_dir,
        video,
        poses=poses,
        scorer=scorer,
        pcutoff=pcutoff,
        dest=dest,
        snapshot=snapshot,
        batch_size=batch_size,
        device=device,
        precision=precision,
        compile=compile,
    )
    console.print(f"labeled video in {path}")


def export(
    run_dir: Path = typer.Argument(..., help=RUN_HELP),
    format: str = typer.Option("onnx", "--format", help="onnx or torchscript."),
    snapshot: str = typer.Option("last", help=SNAPSHOT_HELP),
) -> None:
    """Write RUN_DIR/export/<scorer>.onnx or .pt, with preprocessing in <that file>.json."""
    from poseshift.predict.export import export_run, recipe_path

    path = export_run(run_dir, format=format, snapshot=snapshot)
    console.print(f"model in {path}; preprocessing and decoding in {recipe_path(path)}")
