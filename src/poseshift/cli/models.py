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
    from poseshift.models.weights_lookup import find_local_weights, weights_dir

    table = Table(title=f"Backbones (output stride 16; GFLOPs at {width}x{height})")
    table.add_column("backbone", no_wrap=True)
    for name in ("params (M)", "GFLOPs", "ImageNet top-1", "paper top-1"):
        table.add_column(name, justify="right")
    table.add_column("top-1 source")
    table.add_column("trained as")
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
            "TensorFlow" if entry.origin.padding == "same" else "PyTorch",
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
    "finds it, with how it was trained (padding, BatchNorm eps, input normalization, its "
    "ImageNet top-1 when the file is a known published one). Reads PyTorch files (timm, "
    "torchvision ResNet / MobileNetV2 / EfficientNet, d-li14/mobilenetv2.pytorch, "
    "efficientnet_pytorch / EfficientNet-Lite), safetensors, and MobileNetV2 from TensorFlow: "
    "TF.js Layers (model.json or its folder), Keras HDF5 (.h5) and TFLite (.tflite, uint8 / "
    "int8, BatchNorm re-created on --calibration photos). A file of another architecture or "
    "width, or a truncated one, is refused and nothing is written."
)


@weights_app.command("import", help=IMPORT_HELP)
def import_(
    file: Path = typer.Argument(..., help="Checkpoint: .pth / .pt / .bin / .safetensors."),
    backbone: str = typer.Option(..., "--backbone", help="Backbone name (poseshift models list)."),
    dest: Path | None = typer.Option(
        None, "--dest", help="Folder to store in (default: POSESHIFT_WEIGHTS_DIR)."
    ),
    calibration: Path | None = typer.Option(
        None,
        "--calibration",
        help="TFLite only: a folder of natural photos (>= 4) on which the folded BatchNorm "
        "statistics are re-created (default: the photos beside the file).",
    ),
) -> None:
    """Store a converted checkpoint so offline machines get ImageNet weights (see IMPORT_HELP)."""
    from poseshift.models.weights import import_weights

    path, report = import_weights(file, backbone, dest, calibration)  # mismatches warn
    origin = report.origin
    top1 = (
        f"ImageNet top-1 {origin.top1} % ({origin.top1_source})"
        if origin.top1
        else ("ImageNet top-1 unknown (not a published file poseshift knows)")
    )
    Console().print(
        f"wrote {path} ({report.layout} layout, {report.loaded} tensors; {origin.padding} "
        f"padding, BatchNorm eps {origin.bn_eps:g}, inputs (x - {origin.mean}) / {origin.std}; "
        f"{top1})"
    )
