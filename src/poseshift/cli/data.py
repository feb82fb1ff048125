"""``poseshift data``: inspect and convert labeled data."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from poseshift.cli._app import group

app = group("Inspect, convert and generate labeled data (DeepLabCut projects, COCO).")
console = Console()

PROJECT = typer.Argument(..., help="DeepLabCut project folder (holds config.yaml).")
GROUPS = typer.Option(None, "--groups", help="CSV mapping video (or image) to group.")


def load(project: Path, groups: Path | None = None):
    """The project as a dataset, with an optional group map (shared by several commands)."""
    from poseshift.data.project import load_project, read_group_map

    return load_project(project, read_group_map(groups) if groups else None)


@app.command("info")
def info(project: Path = PROJECT, groups: Path | None = GROUPS) -> None:
    """Print scorer, bodyparts, groups, frames per group, labeled fractions, image sizes."""
    summary = load(project, groups).summary()
    console.print(f"[bold]{summary['task']}[/] at {summary['project']}")
    console.print(f"scorer: {summary['scorer']}   frames: {summary['n_frames']}")
    parts = Table("bodypart", "labeled fraction", title="Bodyparts")
    for name, fraction in summary["labeled_fraction"].items():
        parts.add_row(name, f"{fraction:.3f}")
    console.print(parts)
    videos = Table("group (video)", "frames", title=f"{len(summary['frames_per_group'])} groups")
    for name, count in summary["frames_per_group"].items():
        videos.add_row(name, str(count))
    console.print(videos)
    sizes = ", ".join(f"{size} ({count} frames)" for size, count in summary["image_sizes"].items())
    console.print(f"image sizes (WxH): {sizes}")


@app.command("export-coco")
def export_coco(
    project: Path = PROJECT,
    out_json: Path = typer.Argument(..., help="COCO keypoints json to write."),
    groups: Path | None = GROUPS,
) -> None:
    """Write the project's labels as COCO keypoints json (images stay where they are)."""
    from poseshift.data.coco import export_coco as export

    path = export(load(project, groups), out_json)
    console.print(f"wrote {path}")


@app.command("import-coco")
def import_coco(
    in_json: Path = typer.Argument(..., help="COCO keypoints json."),
    images_dir: Path = typer.Argument(..., help="Folder the json's file_name paths start from."),
    out_project: Path = typer.Argument(..., help="New DeepLabCut project folder to create."),
) -> None:
    """Create a DeepLabCut project from COCO keypoints (one animal per image)."""
    from poseshift.data.coco import import_coco as do_import

    dataset = do_import(in_json, images_dir, out_project)
    console.print(
        f"wrote {out_project}: {len(dataset)} frames, {len(dataset.bodyparts)} bodyparts, "
        f"{len(dataset.group_names)} groups"
    )


@app.command("synth")
def synth(
    out_dir: Path = typer.Argument(..., help="New DeepLabCut project folder to create."),
    individuals: int = typer.Option(30, "--individuals", help="Animals (one folder each)."),
    frames_per_individual: int = typer.Option(40, "--frames-per-individual"),
    size: str = typer.Option("288x162", "--size", help="Frame size WIDTHxHEIGHT."),
    seed: int = typer.Option(0, "--seed"),
    domain_shift: float = typer.Option(
        1.0,
        "--domain-shift",
        help="0: all animals share one look/scene distribution; 1: each its own.",
    ),
    force: bool = typer.Option(False, "--force", help="Replace OUT_DIR if it is not empty."),
) -> None:
    """Generate a synthetic Horse-10-like benchmark: walking quadrupeds, 22 Horse-30 keypoints."""
    import numpy as np
    from rich.progress import Progress

    from poseshift.data.synth import generate, parse_size

    frame_size = parse_size(size)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("rendering individuals", total=individuals)
        dataset = generate(
            out_dir,
            individuals,
            frames_per_individual,
            frame_size,
            seed,
            domain_shift,
            force,
            progress=lambda _: progress.advance(task),
        )
    inside = float(np.isfinite(dataset.keypoints[..., 0]).mean())
    console.print(
        f"wrote {out_dir}: {len(dataset)} frames of {len(dataset.group_names)} individuals at "
        f"{size}, domain shift {domain_shift}, {inside:.1%} of keypoints inside the frame"
    )


@app.command("show")
def show(
    project: Path = PROJECT,
    n: int = typer.Option(8, "--n", help="Frames on the sheet."),
    out: Path | None = typer.Option(
        None, "--out", help="PNG to write (default: <project name>_sheet.png here)."
    ),
    seed: int = typer.Option(0, "--seed", help="Which random frames are shown."),
    groups: Path | None = GROUPS,
) -> None:
    """Write a contact sheet PNG of random labeled frames with keypoints and skeleton."""
    from poseshift.data.show import write_contact_sheet

    path = write_contact_sheet(
        load(project, groups), out or Path(f"{project.resolve().name}_sheet.png"), n, seed
    )
    console.print(f"wrote {path}")
