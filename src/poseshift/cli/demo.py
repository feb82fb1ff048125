"""``poseshift demo``: the study on synthetic data, then real DeepLabCut data and video."""

from __future__ import annotations

from pathlib import Path

import typer

from poseshift.memory_policy import use_memory_policy


def demo(
    out: Path = typer.Option(Path("poseshift-demo"), "--out", help="Folder for everything."),
    quick: bool = typer.Option(False, "--quick", help="A two-minute version (used by tests)."),
    openfield: Path | None = typer.Option(
        None,
        help="DeepLabCut's openfield example project (default: the cached copy, the offline "
        "mirror, else downloaded from DeepLabCut's repository).",
    ),
) -> None:
    """Run a small robustness study on the CPU and show the real-data workflow."""
    use_memory_policy(huge_pages=False)  # before torch loads: it trains more than it analyzes
    from poseshift.demo import run_demo

    run_demo(out, quick, openfield)
