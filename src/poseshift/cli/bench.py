"""``poseshift bench speed``: video-inference FPS vs batch size, next to the paper's."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from poseshift.cli._app import group

app = group("Benchmarks: how fast poseshift runs, next to the paper's numbers.")
console = Console()


def _ints(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"{option} takes comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise typer.BadParameter(f"{option} needs positive integers, got {text!r}")
    return values


@app.command("speed")
def speed(
    backbones: str = typer.Option("mobilenetv2_035,resnet50", help="Comma-separated backbones."),
    sizes: str = typer.Option("128,256,512", help="Square frame sizes (the network input)."),
    batch_sizes: str = typer.Option("1,2,4,8,16,32,64,128,256,512", help="Batch sizes."),
    video: Path | None = typer.Option(
        None, help="Video for end-to-end timing (default: a synthetic 640x480 clip)."
    ),
    frames: int = typer.Option(300, help="Frames of the video used end to end."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1 ..."),
    precision: str = typer.Option("fp32", help="fp32, bf16, fp16 or auto."),
    out: Path = typer.Option(Path("bench-speed"), help="Folder for speed.csv and speed.png."),
    max_seconds: float = typer.Option(20.0, help="Skip or shorten cells longer than this."),
    keypoints: int = typer.Option(22, help="Keypoints of the random networks (horses: 22)."),
    threads: int | None = typer.Option(None, help="CPU threads for torch (default: torch's)."),
    compile: bool = typer.Option(
        False, "--compile/--no-compile", help="torch.compile each network (once per cell)."
    ),
) -> None:
    """Model-only and end-to-end FPS per backbone x size x batch; CSV, plot, Tables 1-2."""
    from poseshift.bench.paper import PAPER_SOURCE
    from poseshift.bench.speed import (
        comparison_table,
        results_frame,
        run_speed_benchmark,
        write_results,
    )
    from poseshift.device import device_name, pick_device

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    names = [b.strip() for b in backbones.split(",") if b.strip()]
    size_list = _ints(sizes, "--sizes")
    batches = _ints(batch_sizes, "--batch-sizes")
    resolved = pick_device(device)
    total = len(names) * len(size_list) * len(batches)
    with console.status("measuring") as status:
        done = []

        def report(cell) -> None:
            done.append(cell)
            fps = "skipped" if cell.fps is None else f"{cell.fps:.1f} fps"
            status.update(
                f"{len(done) // 2}/{total} {cell.backbone} {cell.size}² "
                f"batch {cell.batch_size} {cell.mode}: {fps}"
            )

        cells = run_speed_benchmark(
            names,
            size_list,
            batch_sizes=batches,
            video=video,
            frames=frames,
            device=str(resolved),
            precision=precision,
            max_seconds=max_seconds,
            keypoints=keypoints,
            on_cell=report,
            compile=compile,
        )
    frame = results_frame(
        cells,
        device=device_name(resolved),
        precision=precision,
        video=str(video) if video else f"synthetic 640x480 mp4v, {frames} frames",
    )
    csv, png = write_results(frame, out)
    for batch, number in ((1, 1), (256, 2)):
        table = Table(
            title=f"Batch size {batch} (FPS), ours on {frame['device'].iloc[0]} ({precision}) "
            f"vs paper Table {number}",
        )
        columns = comparison_table(frame, batch)
        table.add_column("backbone", no_wrap=True)
        for column in columns.columns:
            table.add_column(column, justify="right")
        for backbone, row in columns.iterrows():
            table.add_row(str(backbone), *row.tolist())
        console.print(table)
    console.print(
        f"model: network only; video: end to end from {frame['video'].iloc[0]}; "
        f"paper: {PAPER_SOURCE} ('?' = illegible in the source text). "
        f"Skipped and shortened cells are explained in {csv}."
    )
    console.print(f"results in {csv} and {png}")
