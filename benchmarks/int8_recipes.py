"""Which int8 recipe keeps a trained ResNet-50's poses: agreement with fp32, and speed.

In this process, on one clip at 640x480, batch 1: each recipe is calibrated on the clip's
first 32 frames (as ``analyze --precision int8`` does), then predicts every frame. The
agreement counts, of the keypoints the eager fp32 network finds with likelihood >= 0.6 on
all frames, those within 2 px (the gate of analyze_vs_dlc3.md: 99 %); ms/frame is the
mean over the frames after the first (compiling) one. A recipe is a ``+``-joined
list of switches; without ``split`` the whole backbone is quantized, head in fp32:

    split        stem..layer3 int8, layer4 + head in bf16 (compiled apart: in one graph with
                 the int8 part, torch 2.14's Inductor fails)
    histogram    torchao's default activation observer (HistogramObserver); else min-max
    stem         the first convolution in fp32
    sums         residual additions in fp32 (``sums-layer3``, ``sums-layer34``: only there)
    layer3       layer3 in fp32
    head-bf16    the head under bf16 autocast
    library      ``poseshift.predict.int8`` as ``analyze --precision int8`` runs it
    bf16         ``analyze --precision bf16`` (compiled), for comparison

    cd benchmarks && OMP_WAIT_POLICY=PASSIVE ../.venv/bin/python int8_recipes.py RUN CLIP \
        bf16 split+histogram split split+stem split+sums+stem library ...
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch._inductor.config as inductor
from torch import nn
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

from poseshift.models.posenet import PoseNet
from poseshift.predict import int8
from poseshift.predict.frames import FrameBatches
from poseshift.predict.predictor import run_predictor
from poseshift.run import RunDir

SWITCHES = {
    "split",
    "histogram",
    "stem",
    "sums",
    "sums-layer3",
    "sums-layer34",
    "layer3",
    "head-bf16",
}


def outside(filter_fn, stages: tuple[str, ...]):
    """A quantizer filter that also refuses nodes of ``backbone.<stage>`` for ``stages``."""

    def keep(given) -> bool:  # torchao passes a node or a list of them
        nodes = given if isinstance(given, list) else [given]
        stacks = [str(v[0]) for n in nodes for v in n.meta.get("nn_module_stack", {}).values()]
        inside = any(f"backbone.{stage}." in path for path in stacks for stage in stages)
        return (filter_fn(given) if filter_fn else True) and not inside

    return keep


def quantizer(switches: set[str], backbone: nn.Module) -> x86.X86InductorQuantizer:
    class Recipe(x86.X86InductorQuantizer):
        def _sums(self, annotate, gm, config, filter_fn=None) -> None:
            if "sums" in switches:
                return None
            if "sums-layer3" in switches:
                filter_fn = outside(filter_fn, ("layer3",))
            if "sums-layer34" in switches:
                filter_fn = outside(filter_fn, ("layer3", "layer4"))
            return annotate(self, gm, config, filter_fn)

        def _annotate_conv2d_binary_unary(self, gm, config, filter_fn=None) -> None:
            base = x86.X86InductorQuantizer._annotate_conv2d_binary_unary
            return self._sums(base, gm, config, filter_fn)

        def _annotate_conv2d_binary(self, gm, config, filter_fn=None) -> None:
            base = x86.X86InductorQuantizer._annotate_conv2d_binary
            return self._sums(base, gm, config, filter_fn)

    if "histogram" in switches:
        config = x86.get_default_x86_inductor_quantization_config()
    else:
        config = int8.min_max_config()
    recipe = Recipe().set_global(config)
    stem = f"backbone.{int8.stem_convolution(backbone)}"
    for switch, module in (("stem", stem), ("layer3", "backbone.layer3")):
        if switch in switches:
            recipe.set_module_name_qconfig(module, None)
    return recipe


class Parts(nn.Module):
    """An int8 part, then the rest (under bf16 autocast if asked); each compiled apart."""

    def __init__(self, early: nn.Module, late: nn.Module, late_bf16: bool) -> None:
        super().__init__()
        self.early = torch.compile(early, dynamic=False)
        self.late = torch.compile(late, dynamic=False)
        self.late_bf16 = late_bf16

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        with inductor.patch(freezing=True):
            features = self.early(images)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.late_bf16):
                scoremaps, locref = self.late(features)
        return {"scoremaps": scoremaps.float(), "locref": locref.float()}


class UpTo(nn.Module):
    """The backbone up to (without) ``backbone.<stage>``: a ResNet's children in order."""

    def __init__(self, backbone: nn.Module, stage: str | None) -> None:
        super().__init__()
        names = [name for name, _ in backbone.named_children()]
        names = names[: names.index(stage)] if stage else names
        self.backbone = nn.Sequential()  # named like the backbone's, for the module filters
        for name in names:
            self.backbone.add_module(name, backbone.get_submodule(name))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)


class LastStageAndHead(nn.Module):
    def __init__(self, stage: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.stage, self.head = stage, head

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.stage(features))


def build(model: PoseNet, switches: set[str], calibration: list[torch.Tensor]) -> Parts:
    split = "split" in switches
    early = UpTo(model.backbone, "layer4" if split else None).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_pt2e(
            torch.export.export(early, (calibration[0],)).module(),
            quantizer(switches, model.backbone),
        )
        for batch in calibration:
            prepared(batch)
        converted = convert_pt2e(prepared)
    late = LastStageAndHead(model.backbone.layer4, model.head) if split else model.head
    return Parts(converted, late, late_bf16=split or "head-bf16" in switches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("clip", type=Path)
    parser.add_argument("recipes", nargs="+")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    run = RunDir(args.run)
    iteration = max(int(p.stem.split("-")[-1]) for p in args.run.rglob("snapshot-*.pt"))
    frames = torch.cat(list(FrameBatches(args.clip, 8, (640, 480))))
    scale = torch.ones(2)
    fp32 = run_predictor(run, iteration, device="cpu", precision="fp32", compile=False)

    def normalized(batch: torch.Tensor) -> torch.Tensor:
        images = fp32.model.normalize(batch.permute(0, 3, 1, 2))
        return images.contiguous(memory_format=torch.channels_last)

    reference = np.concatenate([fp32.predict_batch(f[None], scale).numpy() for f in frames])
    calibration = [normalized(f[None]) for f in frames[: int8.CALIBRATION_FRAMES]]
    print(f"{args.clip.name}: {len(frames)} frames; {args.run}")
    for recipe in args.recipes:
        switches = set(recipe.split("+"))
        if recipe == "bf16":
            predictor = run_predictor(run, iteration, device="cpu", precision="bf16")
        else:
            predictor = run_predictor(run, iteration, device="cpu", precision="fp32")
            if recipe == "library":
                predictor.use_quantized(int8.quantize_posenet(predictor.model, calibration))
            elif switches <= SWITCHES:
                predictor.network = build(predictor.model, switches, calibration)
            else:
                raise SystemExit(f"unknown switches in {recipe}: {switches - SWITCHES}")
        poses, started = [], None
        for frame in frames:
            poses.append(predictor.predict_batch(frame[None], scale).float().numpy())
            started = started or time.perf_counter()  # after the compiling call
        ms = 1000 * (time.perf_counter() - started) / (len(frames) - 1)
        check = int8.agreement(reference, np.concatenate(poses))
        print(f"{recipe}: {check.describe()}; {ms:.0f} ms/frame", flush=True)


if __name__ == "__main__":
    main()
