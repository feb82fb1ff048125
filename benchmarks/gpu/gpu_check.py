"""The prepared GPU check: every GPU number issue #22 asks for, in one run of <= 8 minutes.

Writes ``gpu_results.json`` (every measurement, the machine, the versions) and
``gpu_results.md`` (the tables) into ``--out``:

1. Paper Tables 1-2: model-only frames/s at batch 1 and 256 for 128², 256², 512² frames,
   MobileNetV2-0.35 / 1.0 and ResNet-50 / 101, fp32 eager (the paper ran TF fp32), next to
   the paper's Titan RTX numbers (``poseshift.bench.paper``).
2. Precision and compilation: the same networks' model-only frames/s for fp32 / bf16, eager /
   compiled (``torch.compile``), at 256² and batch 256.
3. End to end: ``analyze``'s frames/s on the real openfield video (640x480) against the same
   network's model-only frames/s at that size and batch (decode and transfer overlapped; the
   goal is >= 80 %).
4. Training: ``paper``-preset iterations/s (batch 1) and ``fast``-preset images/s (batch 8)
   for MobileNetV2-0.35 and ResNet-50 on the openfield project.

Each section has a share of ``--budget-s``; a cell that would start after its section's
deadline is recorded as skipped, so the run ends in time and says what it left out.
``--tiny`` runs every code path with small sizes on any device (the CPU test in
tests/bench/test_gpu_check.py), so the GPU minutes are not lost to a typo.

    python3 benchmarks/gpu/gpu_check.py --out OUT --project P --video V [--tiny]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch

from poseshift.bench.paper import PAPER_SOURCE, paper_fps
from poseshift.bench.speed import model_fps
from poseshift.device import autocast_dtype, device_name, dtype_name, pick_device
from poseshift.models.codec import ScoremapCodec
from poseshift.models.posenet import PoseNet
from poseshift.predict.predictor import Predictor
from poseshift.predict.video import predict_video
from poseshift.spec import RunSpec, resolve_settings
from poseshift.train.trainer import train


@dataclass(frozen=True)
class Sizes:
    """What each section measures; ``TINY`` keeps every code path at CPU-test size."""

    backbones: tuple[str, ...] = ("mobilenetv2_035", "mobilenetv2_100", "resnet50", "resnet101")
    frame_sizes: tuple[int, ...] = (128, 256, 512)
    batch_sizes: tuple[int, ...] = (1, 256)
    variant_backbones: tuple[str, ...] = ("mobilenetv2_035", "resnet50")
    variant_size: int = 256
    variant_batch: int = 256
    compiled: tuple[bool, ...] = (False, True)
    video_backbones: tuple[str, ...] = ("mobilenetv2_035", "resnet50")
    video_batch: int = 64
    video_frames: int = 2330
    train_backbones: tuple[str, ...] = ("mobilenetv2_035", "resnet50")
    train_iterations: int = 300
    train_workers: int = 6
    cell_seconds: float = 2.0
    # Section shares of the budget, in order; compilation dominates section 2.
    shares: tuple[float, ...] = (0.2, 0.35, 0.15, 0.3)


# Compiling costs minutes on a 2-core CPU, so the tiny run measures eager cells only (the
# compiled cells take the same code path with ``compile=True``).
TINY = Sizes(
    backbones=("mobilenetv2_035",),
    frame_sizes=(32,),
    batch_sizes=(1, 2),
    variant_backbones=("mobilenetv2_035",),
    variant_size=32,
    variant_batch=2,
    compiled=(False,),
    video_backbones=("mobilenetv2_035",),
    video_batch=2,
    video_frames=4,
    train_backbones=("mobilenetv2_035",),
    train_iterations=4,
    train_workers=0,
    cell_seconds=0.02,
)


@dataclass
class Section:
    """One section's rows and its deadline (``time.monotonic`` seconds)."""

    name: str
    deadline: float
    rows: list[dict] = field(default_factory=list)

    def run(self, what: dict, measure: Callable[[], dict]) -> None:
        """Measure one row unless the section's time is up; errors are rows too."""
        if time.monotonic() > self.deadline:
            self.rows.append({**what, "note": "skipped: section time budget spent"})
            return
        start = time.monotonic()
        try:
            row = {**what, **measure()}
        except Exception as exc:  # one failing cell must not cost the other GPU minutes
            row = {**what, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        row["wall_s"] = round(time.monotonic() - start, 2)
        print(json.dumps(row), flush=True)
        self.rows.append(row)


def _predictor(backbone: str, device: str, precision: str, compile: bool) -> Predictor:
    torch.manual_seed(0)  # speed does not depend on the weights; 22 keypoints like the horses
    return Predictor(
        PoseNet(backbone, 22), ScoremapCodec(), device=device, precision=precision, compile=compile
    )


def paper_tables(section: Section, sizes: Sizes, device: str) -> None:
    for backbone in sizes.backbones:
        predictor = _predictor(backbone, device, "fp32", compile=False)
        for size in sizes.frame_sizes:
            for batch in sizes.batch_sizes:
                what = {"backbone": backbone, "size": size, "batch": batch}
                what["paper_fps"] = paper_fps(backbone, size, batch)
                section.run(what, partial(_table_cell, predictor, size, batch, sizes))


def _table_cell(predictor: Predictor, size: int, batch: int, sizes: Sizes) -> dict:
    fps, frames, _ = model_fps(predictor, size, batch, 10 * sizes.cell_seconds, sizes.cell_seconds)
    return {"fps": round(fps, 1), "frames": frames}


def variants(section: Section, sizes: Sizes, device: str) -> None:
    for backbone in sizes.variant_backbones:
        for precision in ("fp32", "bf16"):
            for compiled in sizes.compiled:
                what = {"backbone": backbone, "size": sizes.variant_size}
                what |= {"batch": sizes.variant_batch, "precision": precision}
                cell = partial(_variant_cell, backbone, device, precision, compiled, sizes)
                section.run({**what, "compiled": compiled}, cell)


def _variant_cell(backbone: str, device: str, precision: str, compiled: bool, sizes: Sizes) -> dict:
    size = (sizes.variant_size, sizes.variant_size)
    predictor = _predictor(backbone, device, precision, compiled)
    start = time.monotonic()
    predictor.warm_up(sizes.variant_batch, size)
    warm = time.monotonic() - start
    fps, frames, _ = model_fps(
        predictor, size, sizes.variant_batch, 10 * sizes.cell_seconds, sizes.cell_seconds
    )
    compiled_ran = predictor.network is not predictor.model
    return {"fps": round(fps, 1), "frames": frames, "compiled_ran": compiled_ran,
            "warm_up_s": round(warm, 1)}  # fmt: skip


def end_to_end(section: Section, sizes: Sizes, device: str, video: Path) -> None:
    for backbone in sizes.video_backbones:
        for precision in ("fp32", "bf16"):
            what = {"backbone": backbone, "precision": precision, "batch": sizes.video_batch}
            section.run(what, partial(_video_cell, backbone, device, precision, video, sizes))


def _video_cell(backbone: str, device: str, precision: str, video: Path, sizes: Sizes) -> dict:
    predictor = _predictor(backbone, device, precision, compile=False)
    batch = sizes.video_batch
    predict_video(predictor, video, batch_size=batch, max_frames=2 * batch)  # warm-up
    result = predict_video(predictor, video, batch_size=batch, max_frames=sizes.video_frames)
    model_rate, _, _ = model_fps(
        predictor, result.input_size, batch, 10 * sizes.cell_seconds, sizes.cell_seconds
    )
    return {
        "frames": len(result.poses),
        "input_size": list(result.input_size),
        "analyze_fps": round(result.fps, 1),
        "model_fps": round(model_rate, 1),
        "ratio": round(result.fps / model_rate, 3),
    }


def training(section: Section, sizes: Sizes, device: str, project: Path, workdir: Path) -> None:
    for preset in ("paper", "fast"):
        for backbone in sizes.train_backbones:
            cell = partial(_train_rate, preset, backbone, sizes, device, project, workdir)
            section.run({"preset": preset, "backbone": backbone}, cell)


def _train_rate(
    preset: str, backbone: str, sizes: Sizes, device: str, project: Path, workdir: Path
) -> dict:
    """Iterations/s and images/s over the second half of a short scratch run."""
    overrides = {
        "iterations": sizes.train_iterations,
        "snapshots": [],
        "warmup_iters": 0,
        "log_every": max(1, sizes.train_iterations // 10),
        "checkpoint_every": 10 * sizes.train_iterations,
        "device": device,
        "num_workers": sizes.train_workers,
    }
    recipe, execution = resolve_settings(preset, overrides)
    spec = RunSpec(
        project=str(project), backbone=backbone, init="scratch", preset=preset,
        train=recipe, execution=execution,
    )  # fmt: skip
    stamps: list[float] = []
    train(
        spec,
        workdir / f"{preset}-{backbone}",
        on_iteration=lambda it, losses: stamps.append(time.perf_counter()),
        show_progress=False,
    )
    half = stamps[len(stamps) // 2 :]
    rate = (len(half) - 1) / (half[-1] - half[0])
    return {
        "iterations": len(stamps),
        "batch": recipe.batch_size,
        "autocast": dtype_name(autocast_dtype(recipe.precision, pick_device(device))),
        "iterations_per_s": round(rate, 2),
        "images_per_s": round(rate * recipe.batch_size, 1),
    }


def machine(device: str) -> dict:
    return {
        "device": device_name(pick_device(device)),
        "cpu_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if device.startswith("cuda") else None,
    }


def sections(budget_s: float, shares: tuple[float, ...], names: list[str]) -> list[Section]:
    """Sections whose deadlines split ``budget_s`` by ``shares``; deadlines are cumulative,
    so a section gets what earlier ones left unused."""
    start, total, made = time.monotonic(), 0.0, []
    for name, share in zip(names, shares, strict=True):
        total += share
        made.append(Section(name, start + budget_s * total))
    return made


def markdown(result: dict) -> str:
    """The results as tables: Tables 1-2 next to the paper, variants, end to end, training."""
    rows = result["sections"]
    lines = [f"# GPU check on {result['machine']['device']}", ""]
    lines += [f"Paper numbers: {PAPER_SOURCE}.", ""]
    lines += _table(rows["tables"], ["backbone", "size", "batch", "fps", "paper_fps", "note"])
    lines += [""]
    cols = ["backbone", "precision", "compiled", "fps", "warm_up_s", "compiled_ran", "note"]
    lines += _table(rows["variants"], cols)
    lines += [""]
    cols = ["backbone", "precision", "batch", "analyze_fps", "model_fps", "ratio", "note"]
    lines += _table(rows["video"], cols)
    lines += [""]
    cols = ["preset", "backbone", "batch", "autocast", "iterations_per_s", "images_per_s", "note"]
    lines += _table(rows["training"], cols)
    return "\n".join(lines) + "\n"


def _table(rows: list[dict], columns: list[str]) -> list[str]:
    def text(row: dict, key: str) -> str:
        value = row.get(key, row.get("error", "") if key == "note" else "")
        return "-" if value is None else str(value)

    head = [f"| {' | '.join(columns)} |", "|" + "---|" * len(columns)]
    return head + [f"| {' | '.join(text(r, c) for c in columns)} |" for r in rows]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--project", type=Path, required=True, help="openfield project folder")
    parser.add_argument("--video", type=Path, required=True, help="openfield video")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--budget-s", type=float, default=420.0)
    parser.add_argument("--tiny", action="store_true", help="small sizes: tests every path")
    args = parser.parse_args(argv)
    sizes = TINY if args.tiny else Sizes()
    args.out.mkdir(parents=True, exist_ok=True)
    names = ["tables", "variants", "video", "training"]
    tables, var, video, train_s = sections(args.budget_s, sizes.shares, names)
    paper_tables(tables, sizes, args.device)
    variants(var, sizes, args.device)
    end_to_end(video, sizes, args.device, args.video)
    with tempfile.TemporaryDirectory(prefix="poseshift-gpu-") as workdir:
        training(train_s, sizes, args.device, args.project, Path(workdir))
    result = {
        "machine": machine(args.device),
        "tiny": args.tiny,
        "budget_s": args.budget_s,
        "sections": {s.name: s.rows for s in (tables, var, video, train_s)},
    }
    (args.out / "gpu_results.json").write_text(json.dumps(result, indent=1))
    (args.out / "gpu_results.md").write_text(markdown(result))
    return result


if __name__ == "__main__":
    main()
