"""The ``poseshift`` command line: a thin layer over the library.

One module per subcommand group; heavy imports (torch, timm) happen inside commands so that
``poseshift --help`` stays fast.
"""

from __future__ import annotations

import os

# The command's process policy, set before torch loads (the library itself sets nothing):
# OpenMP threads that spin while waiting collapse torch's CPU speed by 10-50x as soon as
# another process uses a core (measured: 7.1 vs 0.13 s per training step on 2 busy cores).
# Passive waiting costs nothing on an idle machine. Users may override it; notebook users
# set it themselves (README, "Using it from Python").
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import typer

from poseshift import __version__
from poseshift.cli import adapt as adapt_cli
from poseshift.cli import analyze as analyze_cli
from poseshift.cli import bench as bench_cli
from poseshift.cli import data as data_cli
from poseshift.cli import demo as demo_cli
from poseshift.cli import evaluate as evaluate_cli
from poseshift.cli import models as models_cli
from poseshift.cli import outliers as outliers_cli
from poseshift.cli import split as split_cli
from poseshift.cli import study as study_cli
from poseshift.cli import train as train_cli
from poseshift.cli._app import PoseshiftGroup

app = typer.Typer(
    cls=PoseshiftGroup,
    help="poseshift: pose estimation that holds up on new animals, scenes and cameras.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    add_completion=False,
)
app.add_typer(data_cli.app, name="data")
app.add_typer(split_cli.app, name="split")
app.add_typer(study_cli.app, name="study")
app.add_typer(models_cli.app, name="models")
app.add_typer(models_cli.weights_app, name="weights")
app.command("train")(train_cli.train)
app.command("evaluate")(evaluate_cli.evaluate)
app.command("demo")(demo_cli.demo)
app.command("analyze")(analyze_cli.analyze)
app.command("label-video")(analyze_cli.label_video)
app.command("export")(analyze_cli.export)
app.command("adapt")(adapt_cli.adapt)
app.command("outliers")(outliers_cli.outliers)
app.add_typer(bench_cli.app, name="bench")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"poseshift {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """poseshift: pose estimation that holds up on new animals, scenes and cameras."""


def main() -> None:
    app()
