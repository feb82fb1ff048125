"""``poseshift train``: train one network on one split cell of a project."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer
from rich.console import Console

from poseshift.memory_policy import use_memory_policy

console = Console()


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'WxH' -> (W, H)."""
    if text is None:
        return None
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"sizes are written WxH, e.g. 288x162; got {text!r}") from None
    if width < 1 or height < 1:
        raise typer.BadParameter(f"a size needs a width and height of at least 1; got {text!r}")
    return width, height


def augment_options(crop: str | None, canvas: str | None) -> dict | None:
    """The ``augment`` overrides of ``--crop`` and ``--canvas`` (a crop implies ``fixed``)."""
    options = {"crop": parse_size(crop), "canvas": canvas}
    if crop is not None and canvas is None:
        options["canvas"] = "fixed"
    return {k: v for k, v in options.items() if v is not None} or None


def train(
    project: Path = typer.Argument(..., help="DeepLabCut project folder."),
    backbone: str = typer.Option(..., help="Backbone name (see 'poseshift models list')."),
    out: Path = typer.Option(..., "--out", help="Run directory to create or resume."),
    split: str | None = typer.Option(None, help="Split name (default: from config.yaml)."),
    shuffle: int = typer.Option(1, help="Shuffle number of the split."),
    fraction: float | None = typer.Option(None, help="Training fraction of the split."),
    init: str = typer.Option("imagenet", help="imagenet, scratch, or a weights file."),
    preset: str = typer.Option("paper", help="paper, paper-long, fast, or a YAML file."),
    iters: int | None = typer.Option(None, help="Override the preset's iterations."),
    batch_size: int | None = typer.Option(None, help="Override the preset's batch size."),
    crop: str | None = typer.Option(
        None, help="Training crops WxH on a fixed canvas (default: the preset's canvas)."
    ),
    canvas: str | None = typer.Option(
        None,
        help="fixed (one padded or cropped canvas) or per_image (whole scaled images, as "
        "DeepLabCut-TF trained); default: the preset's (paper: per_image), fixed with --crop.",
    ),
    backbone_stride: int | None = typer.Option(
        None,
        help="16 (the last stage dilated, as DeepLabCut) or 32 (undilated, then a learned "
        "upsampling; ResNet-50 trains ~1.3x faster); default: the preset's (16).",
    ),
    device: str | None = typer.Option(
        None, help="auto, cpu, cuda, cuda:1 ... (default: the preset's, else auto)"
    ),
    devices: int | None = typer.Option(
        None,
        help="Data-parallel processes (DDP), one per GPU (on a CPU: gloo processes); the "
        "global batch and LR stay the preset's (default: the preset's, else 1). Leave it out "
        "under torchrun.",
    ),
    workers: int | None = typer.Option(None, help="Data-loading worker processes."),
    seed: int | None = typer.Option(None, help="Override the preset's seed."),
) -> None:
    """Train a pose network; re-running resumes an interrupted run or skips a finished one."""
    use_memory_policy(huge_pages=False)  # before torch loads
    from poseshift.spec import RunSpec, resolve_settings
    from poseshift.train.distributed import launched_rank, world_size
    from poseshift.train.trainer import train as run_training

    overrides = {
        "iterations": iters,
        "batch_size": batch_size,
        "seed": seed,
        "backbone_stride": backbone_stride,
        "device": device,
        "devices": devices,
        "num_workers": workers,
        "augment": augment_options(crop, canvas),
    }
    config, execution = resolve_settings(preset, overrides, where="train options")
    execution = dataclasses.replace(execution, devices=world_size(execution.devices))
    spec = RunSpec(
        project=str(project.resolve()),
        backbone=backbone,
        split=split,
        shuffle=shuffle,
        fraction=fraction,
        init=init,
        preset=preset,
        train=config,
        execution=execution,
    )
    result = run_training(spec, out)
    if launched_rank() != 0:  # under torchrun, rank 0 speaks for the run
        return
    if result.skipped:
        console.print(f"{out} is already finished ({result.iteration} iterations); nothing to do")
    elif result.finished:
        console.print(f"finished {result.iteration} iterations; run in {out}")
    else:
        console.print(
            f"interrupted at iteration {result.iteration}; run the same command to resume"
        )
        raise typer.Exit(130)
