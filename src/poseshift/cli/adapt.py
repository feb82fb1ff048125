"""``poseshift adapt``: a run's BatchNorm statistics re-estimated on unlabeled target frames."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from poseshift.cli.analyze import RUN_HELP, SNAPSHOT_HELP

console = Console()


def adapt(
    run_dir: Path = typer.Argument(..., help=RUN_HELP),
    frames: Path = typer.Argument(
        ..., help="A video, a folder of images, or a DeepLabCut project (its labeled-data)."
    ),
    out: Path = typer.Option(..., "--out", help="The adapted run directory to write."),
    snapshot: str = typer.Option("last", help=SNAPSHOT_HELP),
    max_frames: int = typer.Option(500, help="At most this many frames, spread evenly."),
    batch_size: int = typer.Option(16, help="Frames per batch for the statistics."),
    prior: float = typer.Option(
        0.0, help="Keep the stored statistics with the weight of this many frames (0: AdaBN)."
    ),
    frozen_batchnorm: str = typer.Option(
        "refuse", help="For runs trained with frozen BatchNorm: refuse, or adapt anyway."
    ),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1 ..."),
    overwrite: bool = typer.Option(False, help="Replace an adapted run made from other frames."),
) -> None:
    """Write a new run whose BatchNorm statistics are those of FRAMES (AdaBN, no labels).

    evaluate, analyze, label-video and export use it like any run; its adaptation.json
    records the source run and snapshot and the frames (paths, sizes, sha256).
    """
    from poseshift.predict.adapt import adapt_run

    run = adapt_run(
        run_dir,
        frames,
        out,
        snapshot=snapshot,
        max_frames=max_frames,
        batch_size=batch_size,
        prior=prior,
        frozen=frozen_batchnorm,
        device=device,
        overwrite=overwrite,
    )
    record = run.adaptation() or {}
    result = record.get("result", {})
    console.print(
        f"adapted {result.get('batchnorm_layers')} BatchNorm layers on "
        f"{result.get('frames_decoded')} frames of {record['frames']['source']}: run in {run.path}"
    )
