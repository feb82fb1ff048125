"""``poseshift study report DIR``: redraw a study's figures and write its HTML report."""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.console import Console
from rich.logging import RichHandler

console = Console()


def report(
    study_dir: Path = typer.Argument(
        ..., help="Study directory written by 'poseshift study run' (holds results.csv)."
    ),
) -> None:
    """Draw the paper's figures from DIR/results.csv into DIR/figures/ and write DIR/report.html."""
    from poseshift.study.figures import make_figures
    from poseshift.study.report import write_report

    # Say which figures the study's data cannot support, and why.
    log = logging.getLogger("poseshift.study")
    log.setLevel(logging.INFO)
    handler = RichHandler(console=console, show_time=False, show_path=False, show_level=False)
    log.addHandler(handler)
    try:
        figures = make_figures(study_dir)
    finally:
        log.removeHandler(handler)
    console.print(f"{len(figures) // 2} figures (PNG + SVG) in {study_dir / 'figures'}")
    console.print(f"report: {write_report(study_dir)}")
