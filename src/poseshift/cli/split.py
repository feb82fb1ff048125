"""``poseshift split``: group-aware train / within / out-of-domain splits."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from poseshift.cli._app import group
from poseshift.cli.data import GROUPS, PROJECT, load

app = group(
    "Make or list splits: train on some individuals, test within and out of domain.",
    default_command="create",
)
console = Console()


def parse_floats(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"{option} takes numbers separated by commas: {text!r}") from None


@app.command("create")
def create(
    project: Path = PROJECT,
    scheme: str = typer.Option("horse10", help="horse10 (groups held out) or random (DLC)."),
    train_groups: int = typer.Option(10, help="Groups (individuals) used for training."),
    shuffles: int = typer.Option(3, help="Independent draws of training groups."),
    fractions: str = typer.Option("0.05,0.1,0.2,0.5,0.9", help="Training fractions."),
    seed: int = typer.Option(0),
    from_files: bool = typer.Option(
        False, "--from-files", help="Use the official Horse-10 TrainTestInfo_shuffle*.csv."
    ),
    files_dir: Path | None = typer.Option(
        None,
        help="Folder of the official split files (default: $POSESHIFT_SHARED/data/horse10).",
    ),
    name: str | None = typer.Option(None, help="Split name (default from scheme and seed)."),
    groups: Path | None = GROUPS,
    force: bool = typer.Option(False, help="Replace an existing split of the same name."),
) -> None:
    """Create a split and save it as PROJECT/splits/NAME.json."""
    from poseshift.data import splits
    from poseshift.locations import in_mirror

    dataset = load(project, groups)
    values = parse_floats(fractions, "--fractions")
    if from_files:
        files_dir = files_dir or in_mirror("data", "horse10")
        if files_dir is None:
            raise typer.BadParameter("--from-files needs --files-dir (or $POSESHIFT_SHARED set)")
        files = splits.official_files(files_dir, shuffles)
        if not files:
            raise typer.BadParameter(f"no TrainTestInfo_shuffle*.csv in {files_dir}")
        split = splits.official_split(dataset, files, values, seed, name or "horse10-official")
    elif scheme == "horse10":
        split = splits.group_split(dataset, train_groups, shuffles, values, seed, name)
    elif scheme == "random":
        split = splits.random_split(dataset, shuffles, values, seed, name)
    else:
        raise typer.BadParameter(f"--scheme must be one of {splits.SCHEMES}, got {scheme!r}")
    path = splits.save_split(project, split, force=force)
    show(split)
    console.print(f"saved {path}")


def show(split) -> None:
    table = Table(
        "shuffle",
        "fraction",
        "train",
        "within",
        "ood",
        "train groups",
        title=f"split {split.name} ({split.scheme}, seed {split.seed})",
    )
    for shuffle in split.shuffles:
        for key in shuffle.train:
            table.add_row(
                str(shuffle.index),
                key,
                str(len(shuffle.train[key])),
                str(len(shuffle.within[key])),
                str(len(shuffle.ood)),
                f"{len(shuffle.train_groups)}: "
                + ", ".join(shuffle.train_groups[:4])
                + (" …" if len(shuffle.train_groups) > 4 else ""),
            )
    console.print(table)


@app.command("list")
def list_(project: Path = PROJECT) -> None:
    """List the splits saved in a project."""
    from poseshift.data.splits import list_splits, load_split

    names = list_splits(project)
    if not names:
        console.print(f"no splits in {project}/splits; create one with 'poseshift split PROJECT'")
    for name in names:
        show(load_split(project, name))
