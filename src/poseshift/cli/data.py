"""``poseshift data``: inspect and convert labeled data."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from poseshift.cli._app import group, progress_bar

app = group(
    "Inspect, convert and generate labeled data (DeepLabCut projects; import from and export "
    "to Lightning Pose, SLEAP, NWB, COCO, Label Studio, YOLO)."
)
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


@app.command("export")
def export(
    project: Path = PROJECT,
    out: Path = typer.Argument(
        ..., help="File to write: .slp (SLEAP; .pkg.slp embeds images), .nwb or .json (COCO)."
    ),
    groups: Path | None = GROUPS,
) -> None:
    """Write the project's labels in the format OUT's extension names (images stay put)."""
    from poseshift.data.formats.export import export_format, export_labels

    export_format(out)  # a wrong extension fails before the project is read
    path = export_labels(load(project, groups), out)
    console.print(f"wrote {path}")


@app.command("import")
def import_(
    source: Path = typer.Argument(
        ...,
        help="Lightning Pose folder or CSV, SLEAP .slp, NWB .nwb, Label Studio or COCO json, "
        "YOLO dataset folder.",
    ),
    out_project: Path = typer.Argument(..., help="New DeepLabCut project folder to create."),
    format: str | None = typer.Option(
        None,
        "--format",
        help="lightning-pose, slp, nwb, coco, labelstudio or yolo (default: detected).",
    ),
    individual: str | None = typer.Option(
        None, "--individual", help="Multi-animal sources: the track (animal) to import."
    ),
    predictions: bool = typer.Option(
        False,
        "--predictions",
        help="SLEAP / NWB: also predicted instances (frames without user labels).",
    ),
    images: Path | None = typer.Option(
        None,
        "--images",
        help="COCO / Label Studio: the folder the image paths start from (default: the json's).",
    ),
    categories: str | None = typer.Option(
        None, "--categories", help="COCO: categories to import, comma-separated, or 'all' (merged)."
    ),
    skeleton_base: int | None = typer.Option(
        None,
        "--skeleton-base",
        min=0,
        max=1,
        help="COCO: skeleton numbering, 0 or 1 (default: detected).",
    ),
) -> None:
    """Create a DeepLabCut project from another tool's labels (one animal per frame)."""
    from poseshift.data.formats.read import ImportOptions, import_labels

    options = ImportOptions(
        format=format,
        individual=individual,
        predictions=predictions,
        images=images,
        categories=[c.strip() for c in categories.split(",") if c.strip()] if categories else None,
        skeleton_base=skeleton_base,
    )
    dataset = import_labels(source, out_project, options)
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

    from poseshift.datasets.synthetic.generate import generate, parse_size

    frame_size = parse_size(size)
    with progress_bar("rendering individuals", individuals) as report:
        dataset = generate(
            out_dir,
            individuals=individuals,
            frames_per_individual=frames_per_individual,
            size=frame_size,
            seed=seed,
            domain_shift=domain_shift,
            force=force,
            progress=lambda _: report(),
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
    from poseshift.draw import write_contact_sheet

    path = write_contact_sheet(
        load(project, groups), out or Path(f"{project.resolve().name}_sheet.png"), n, seed
    )
    console.print(f"wrote {path}")


@app.command("fetch")
def fetch(
    dataset: str = typer.Argument(..., help="Dataset to get: horse10 (the Horse-30 images)."),
    dest: Path = typer.Option(..., "--dest", help="Folder to put the project in."),
    url: str | None = typer.Option(
        None, "--url", help="Archive URL (default: the official Hugging Face mwmathis/Horse-30)."
    ),
    archive: Path | None = typer.Option(
        None, "--archive", help="Install from this local horse10.tar.xz; no network."
    ),
    sha256: str | None = typer.Option(None, "--sha256", help="Expected sha256 of the archive."),
    split_files: Path | None = typer.Option(
        None,
        "--split-files",
        help="Folder with the official TrainTestInfo_shuffle*.csv and Horsescale.h5 to copy "
        "into the project (default: $POSESHIFT_SHARED/data/horse10 when it exists).",
    ),
) -> None:
    """Download, verify and unpack Horse-30 into DEST/Horses-Byron-2019-05-08 (resumable)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from poseshift.datasets.horse10 import DEFAULT_URL, LICENCE, fetch_horse10

    if dataset != "horse10":
        raise typer.BadParameter(f"only 'horse10' can be fetched, got {dataset!r}")
    console.print(f"licence: {LICENCE}", soft_wrap=True)
    if archive is None:
        console.print(f"source: {url or DEFAULT_URL}")
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def show(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        result = fetch_horse10(
            dest, url=url, archive=archive, sha256=sha256, split_files=split_files, progress=show
        )
    if result.already:
        console.print(f"{result.project} is already installed; delete it to fetch again")
        return
    verdict = "the official archive" if result.official else "not the official archive"
    console.print(f"sha256 {result.sha256} ({result.size:,} bytes, {verdict})", soft_wrap=True)
    console.print(
        f"installed {result.project}: {result.n_frames} frames of {result.n_groups} groups"
    )
    if result.split_files:
        console.print(f"copied into the project: {', '.join(result.split_files)}")
    else:
        console.print(
            "no official split files copied: pass --split-files with the "
            "TrainTestInfo_shuffle*.csv of github.com/amathislab/Horse-10-benchmark"
        )
    if result.archive is not None and archive is None:
        console.print(f"the archive stays at {result.archive}; delete it to save space")


@app.command("fetch-example")
def fetch_example(
    name: str = typer.Argument(..., help="Example project to get: openfield."),
    dest: Path | None = typer.Option(
        None, "--dest", help="Folder for the project's files (default: the examples cache)."
    ),
) -> None:
    """Download DeepLabCut's openfield example (29 MB), checked file by file; resumable."""
    from poseshift.datasets.openfield import LICENCE, fetch_openfield

    if name != "openfield":
        raise typer.BadParameter(f"only 'openfield' can be fetched, got {name!r}")
    console.print(f"licence: {LICENCE}", soft_wrap=True)
    with progress_bar("downloading openfield") as report:
        path = fetch_openfield(dest, progress=lambda _stage, done, total: report(done, total))
    console.print(f"openfield example project at {path}", soft_wrap=True)


@app.command("corrupt")
def corrupt(
    project: Path = PROJECT,
    split: str = typer.Option(..., "--split", help="Saved split whose test images to corrupt."),
    shuffle: int = typer.Option(1, "--shuffle", help="Shuffle of the split."),
    partitions: str = typer.Option("within,ood", "--partitions", help="within and/or ood."),
    corruptions: str = typer.Option(
        "all", "--corruptions", help="'all' or names, comma-separated."
    ),
    severities: str = typer.Option("1-5", "--severities", help="e.g. 1-5 or 1,3,5."),
    out: Path = typer.Option(..., "--out", help="Folder for <corruption>/<severity>/ projects."),
    seed: int = typer.Option(0, "--seed"),
    workers: int = typer.Option(1, "--workers", help="Processes corrupting images in parallel."),
    force: bool = typer.Option(False, "--force", help="Remake copies that exist."),
) -> None:
    """Write Horse-C: ImageNet-C corruptions of the test images, one project per severity."""
    from poseshift.datasets.horse_c.build import (
        make_corruptions,
        parse_corruptions,
        parse_severities,
    )

    names, levels = parse_corruptions(corruptions), parse_severities(severities)
    parts = [p.strip() for p in partitions.split(",") if p.strip()]
    with progress_bar("corrupting images") as report:
        manifest = make_corruptions(
            project,
            split,
            out,
            shuffle=shuffle,
            partitions=parts,
            corruptions=names,
            severities=levels,
            seed=seed,
            workers=workers,
            force=force,
            progress=report,
        )
    counts = ", ".join(f"{len(v)} {k}" for k, v in manifest["partitions"].items())
    console.print(
        f"wrote {out}: {len(names)} corruptions x {len(levels)} severities of {counts} images "
        f"(split {split}, shuffle {shuffle}, seed {seed})"
    )
