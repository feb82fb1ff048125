"""``poseshift outliers``: extract a video's least reliable frames for labeling in DeepLabCut."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from poseshift.cli.analyze import COMPILE_HELP, RUN_HELP, SNAPSHOT_HELP

console = Console()


def outliers(
    run_dir: Path = typer.Argument(..., help=RUN_HELP),
    video: Path = typer.Argument(..., help="Video to pick frames from (analyzed if needed)."),
    n: int = typer.Option(20, "--n", help="How many frames to extract."),
    min_gap: int | None = typer.Option(
        None, help="Frames between two picks at least (default: frames / (5 n))."
    ),
    project: Path | None = typer.Option(
        None, help="DeepLabCut project to extract into (default: the run's)."
    ),
    dest: Path | None = typer.Option(None, help="Analysis folder (default: the video's)."),
    snapshot: str = typer.Option("last", help=SNAPSHOT_HELP),
    batch_size: int = typer.Option(8, help="Frames per network batch."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1 ..."),
    compile: bool | None = typer.Option(None, "--compile/--no-compile", help=COMPILE_HELP),
) -> None:
    """Write PROJECT/labeled-data/<video>/imgNNNN.png + machinelabels, as DeepLabCut does.

    Frames are ranked by the reliability score (likelihood, agreement at another input
    scale, temporal jumps); open them with DeepLabCut's refine_labels / napari-deeplabcut.
    """
    from poseshift.predict.outliers import extract_outliers

    result = extract_outliers(
        run_dir,
        video,
        n=n,
        min_gap=min_gap,
        project=project,
        dest=dest,
        snapshot=snapshot,
        batch_size=batch_size,
        device=device,
        compile=compile,
    )
    console.print(
        f"{len(result.frames)} frames in {result.folder} (frames {sorted(result.frames)}); "
        f"network guesses in {result.machine_labels.name}"
    )
