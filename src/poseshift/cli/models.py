"""``poseshift models`` (the backbone table) and ``poseshift weights`` (offline weights)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from poseshift.cli._app import group

app = group("The pose networks' backbones: size, cost, ImageNet accuracy, local weights.")
weights_app = group(
    "Pretrained backbone weights for offline machines: convert and store checkpoint files."
)


@app.command("list")
def list_models(
    height: int = typer.Option(162, help="Image height for the GFLOPs column."),
    width: int = typer.Option(288, help="Image width for the GFLOPs column."),
) -> None:
    """Every backbone with parameters, GFLOPs, ImageNet top-1 and whether weights are here.

    Offline and quick: costs are counted on torch's meta device; nothing is downloaded.
    """
    from poseshift.models.backbones import BACKBONES, backbone_cost
    from poseshift.models.weights import find_local_weights, weights_dir

    table = Table(title=f"Backbones (output stride 16; GFLOPs at {width}x{height})")
    table.add_column("backbone", no_wrap=True)
    for name in ("params (M)", "GFLOPs", "ImageNet top-1", "paper top-1"):
        table.add_column(name, justify="right")
    table.add_column("top-1 source")
    table.add_column("weights here")
    for name, entry in BACKBONES.items():
        params, gflops = backbone_cost(name, height, width)
        paper = f"{entry.paper_top1:.1f}" if entry.paper_top1 is not None else "-"
        here = "yes" if find_local_weights(name) else "no"
        table.add_row(
            name,
            f"{params / 1e6:.2f}",
            f"{gflops:.2f}",
            f"{entry.top1:.2f}",
            paper,
            entry.top1_source,
            here,
        )
    console = Console()
    console.print(table)
    console.print(
        f"GFLOPs: backbone only, 2 per multiply-add. Weights folder: {weights_dir()} "
        "(POSESHIFT_WEIGHTS_DIR); add files with 'poseshift weights import'."
    )


IMPORT_HELP = (
    "Convert a checkpoint to BACKBONE.safetensors in the weights folder, where init=imagenet "
    "finds it. Reads timm, torchvision (ResNet, MobileNetV2, EfficientNet) and "
    "d-li14/mobilenetv2.pytorch checkpoints. timm has no ImageNet weights for MobileNetV2 0.35 "
    "and 0.75: use d-li14's pretrained/mobilenetv2_0.35-b2e15951.pth and "
    "mobilenetv2_0.75-dace9791.pth. A file of another architecture or width is refused and "
    "nothing is written."
)


@weights_app.command("import", help=IMPORT_HELP)
def import_(
    file: Path = typer.Argument(..., help="Checkpoint: .pth / .pt / .bin / .safetensors."),
    backbone: str = typer.Option(..., "--backbone", help="Backbone name (poseshift models list)."),
    dest: Path | None = typer.Option(
        None, "--dest", help="Folder to store in (default: POSESHIFT_WEIGHTS_DIR)."
    ),
) -> None:
    """Store a converted checkpoint so offline machines get ImageNet weights (see IMPORT_HELP)."""
    from poseshift.models.weights import import_weights

    path, report = import_weights(file, backbone, dest)  # key mismatches warn on stderr
    Console().print(f"wrote {path} ({report.layout} layout, {report.loaded} tensors)")
