"""Export a run's network to ONNX or TorchScript, with its preprocessing written beside it.

The exported module takes normalized float32 images (B, 3, H, W) and returns
``(scoremaps, locref)``; batch, height and width are dynamic. ``<file>.json`` next to the
model says how to get from video pixels to the input (resize, RGB, /255, mean/std) and from
the outputs back to keypoints (argmax + locref, stride 8), so it runs without poseshift.
ONNX uses torch's ``torch.export``-based exporter (needs ``onnx`` and ``onnxscript``);
TorchScript uses ``torch.jit.script``, which torch has deprecated but still runs.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from poseshift import __version__
from poseshift.errors import PoseshiftError
from poseshift.fsutil import write_atomic, write_json_atomic
from poseshift.models.posenet import PoseNet
from poseshift.predict.predictor import run_predictor
from poseshift.run import RunDir

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
MIN_SIZE = 32  # smallest height / width the exported graph is valid for
EXAMPLE_SHAPE = (2, 3, 128, 128)


class ExportedPoseNet(nn.Module):
    """PoseNet with a tuple output (exporters and runtimes prefer tuples to dicts)."""

    def __init__(self, model: PoseNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = self.model(images)
        return outputs["scoremaps"], outputs["locref"]


def recipe_path(model_path: str | Path) -> Path:
    """The json describing an exported model: ``<name>.onnx.json`` / ``<name>.pt.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".json")


def export_onnx(model: PoseNet, path: str | Path) -> Path:
    """Write ``model`` as ONNX with dynamic batch, height and width (>= ``MIN_SIZE``)."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise PoseshiftError(
            f"ONNX export needs the '{exc.name}' package: pip install onnx onnxscript"
        ) from None
    module = ExportedPoseNet(model).eval()
    dims = {
        0: torch.export.Dim("batch", min=1),
        2: torch.export.Dim("height", min=MIN_SIZE),
        3: torch.export.Dim("width", min=MIN_SIZE),
    }
    program = torch.onnx.export(
        module,
        (torch.randn(*EXAMPLE_SHAPE),),
        dynamo=True,
        input_names=["images"],
        output_names=["scoremaps", "locref"],
        dynamic_shapes={"images": dims},
        verbose=False,
    )
    if program is None:  # torch returns None only when asked not to build a program
        raise PoseshiftError(f"ONNX export of {Path(path).name} produced no program")
    return write_atomic(path, lambda tmp: program.save(str(tmp)))


def export_torchscript(model: PoseNet, path: str | Path) -> Path:
    """Write ``model`` as a scripted module (any input size) loadable with ``torch.jit.load``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.* is deprecated", category=Warning)
        scripted = torch.jit.script(ExportedPoseNet(model).eval())
        return write_atomic(path, lambda tmp: torch.jit.save(scripted, str(tmp)))


def export_run(run_dir: str | Path, *, format: str = "onnx", snapshot: str | int = "last") -> Path:
    """Export a run's snapshot to ``RUN_DIR/export/<scorer>.onnx|.pt``; return its path.

    ``recipe_path(path)`` (``<file>.json``) describes preprocessing and decoding.
    """
    if format not in FORMATS:
        raise PoseshiftError(f"export format must be one of {list(FORMATS)}, got {format!r}")
    run = RunDir(run_dir)
    iteration = run.choose_snapshot(snapshot)
    predictor = run_predictor(run, iteration, device="cpu", precision="fp32", compile=False)
    model, codec, stride = predictor.model, predictor.codec, predictor.codec.stride
    name = run.scorer(iteration)
    cells = model.backbone_stride // stride  # map cells per backbone cell (head.map_size)
    path = run.export_dir / f"{name}{FORMATS[format]}"
    (export_onnx if format == "onnx" else export_torchscript)(model, path)
    description = {
        "format": format,
        "file": path.name,
        "poseshift": __version__,
        "scorer": name,
        "snapshot": iteration,
        "backbone": model.backbone_name,
        "bodyparts": run.bodyparts(),
        "input": {
            "name": "images",
            "shape": ["batch", 3, "height", "width"],
            "dtype": "float32",
            "min_height_width": MIN_SIZE,
        },
        "preprocessing": {
            "resize_factor": predictor.input_scale,
            # Exactly what Predictor does (frames.scaled_size, resize_frame, to_original_pixels).
            "resize": "resize a W x H frame to w = max(1, round(W * resize_factor)), h = "
            "max(1, round(H * resize_factor)) (round half to even, as Python's round) with "
            "cv2.resize, INTER_AREA when shrinking, INTER_LINEAR when growing; map predicted "
            "x, y back to frame pixels as (x + 0.5) * W / w - 0.5, (y + 0.5) * H / h - 0.5 "
            "(integer coordinates are pixel centres)",
            "pad": f"pad the resized frame with black (pixel 0) on the right and bottom to a "
            f"multiple of {model.backbone_stride} in height and width (the feature grid of "
            "TensorFlow-padded networks depends on the size); predictions need no change",
            "pad_to_multiple": model.backbone_stride,
            "channel_order": "RGB",
            "formula": "(pixel / 255 - mean[c]) / std[c]",
            "mean": list(model.mean),
            "std": list(model.std),
        },
        "outputs": {
            "scoremaps": f"(batch, K, h, w) logits, h = {cells} * ceil(height / "
            f"{model.backbone_stride}), w = {cells} * ceil(width / {model.backbone_stride}); "
            "sigmoid gives the likelihood",
            "locref": "(batch, 2K, h, w); channels 2k, 2k + 1 are dx, dy of keypoint k in "
            "units of locref_stdev",
        },
        "decoding": {
            "stride": stride,
            "locref_stdev": codec.locref_stdev,
            "rule": f"for keypoint k take the argmax cell (i, j) of scoremaps[k]; x = j * "
            f"{stride} + {stride / 2} + dx * locref_stdev, y = i * {stride} + {stride / 2} + "
            "dy * locref_stdev, likelihood = sigmoid(peak logit)",
        },
    }
    write_json_atomic(recipe_path(path), description)
    return path
