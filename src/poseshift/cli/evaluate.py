"""``poseshift evaluate``: errors and PCK of a run's snapshots on train / within / ood."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from poseshift.cli._app import progress_bar

console = Console()


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def evaluate(
    run_dir: Path = typer.Argument(..., help="Run directory made by 'poseshift train'."),
    snapshot: str = typer.Option("last", help="Iteration number, 'last' or 'all'."),
    plot: int = typer.Option(0, help="Images per partition to draw with labels and predictions."),
    scale_pair: str | None = typer.Option(
        None, help="Two bodyparts whose per-group median distance normalizes errors (A,B)."
    ),
    scale_file: Path | None = typer.Option(None, help="Official per-image scale (Horsescale.h5)."),
    batch_size: int = typer.Option(8),
    device: str = typer.Option("auto"),
    force: bool = typer.Option(False, help="Recompute snapshots that were already evaluated."),
    corruptions: Path | None = typer.Option(
        None, help="Folder made by 'poseshift data corrupt': also score each corruption (Horse-C)."
    ),
) -> None:
    """Write RUN_DIR/eval/<snapshot>/metrics.json and predictions.h5, and print the table."""

    from poseshift.evaluate.evaluate import evaluate_run

    options = EvaluationOptions(
        snapshots=snapshot,
        scale_pair=scale_pair.split(",") if scale_pair else None,
        scale_file=scale_file,
        batch_size=batch_size,
        device=device,
        force=force,
    )
    with progress_bar(f"evaluating {run_dir.name}: images predicted") as report:
        results = evaluate_run(run_dir, plot=plot, progress=report, **vars(options))
    for metrics in results:
        table = Table(
            "partition",
            "images",
            "error px",
            "normalized",
            "PCK@0.3",
            "error px (p>=cutoff)",
            "kept",
            title=f"snapshot {metrics['snapshot']}",
        )
        for name, part in metrics["partitions"].items():
            table.add_row(
                name,
                str(part["n_images"]),
                _fmt(part["error_px"]),
                _fmt(part["normalized_error"], 3),
                _fmt(part["pck"], 3),
                _fmt(part.get("error_px_pcutoff")),
                _fmt(part.get("kept_fraction_pcutoff")),
            )
        console.print(table)
    if corruptions is not None:
        _corruption_tables(run_dir, corruptions, options)
    console.print(f"metrics in {run_dir}/eval/")


@dataclass
class EvaluationOptions:
    """The options ``evaluate`` passes on to the clean and the Horse-C evaluation alike."""

    snapshots: str
    scale_pair: list[str] | None
    scale_file: Path | None
    batch_size: int
    device: str
    force: bool


def _corruption_tables(run_dir: Path, folder: Path, options: EvaluationOptions) -> None:
    """Horse-C: normalized error and PCK per corruption (mean over severities), clean, mean."""
    from poseshift.evaluate.horse_c import evaluate_corruptions

    with progress_bar("scoring corrupted copies") as advance:
        reports = evaluate_corruptions(run_dir, folder, progress=advance, **vars(options))
    for report in reports:
        parts = list(report["clean"])
        columns = [f"{p} {m}" for p in parts for m in ("normalized", "PCK@0.3")]
        table = Table("corruption", *columns, title=f"Horse-C, snapshot {report['snapshot']}")
        rows = {"clean": report["clean"], **report["per_corruption"], "mean": report["mean"]}
        for name, cell in rows.items():
            keys = ("normalized_error", "pck")
            table.add_row(name, *(_fmt(cell[p][k], 3) for p in parts for k in keys))
        console.print(table)
