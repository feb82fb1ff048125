"""``poseshift demo``: the whole story on a laptop CPU.

1. A small robustness study on the synthetic benchmark (the shipped ``demo`` plan): several
   backbones, two training fractions, errors within and out of domain, figures and a report.
2. The product on real data nobody here made: a short training run on DeepLabCut's openfield
   example project, then its video analyzed into a DeepLabCut-style .h5 and a labeled video.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import pandas as pd
from rich.console import Console
from rich.table import Table

from poseshift.errors import PoseshiftError
from poseshift.models.weights import find_local_weights
from poseshift.study.plan import Plan, load_plan

SHARED_OPENFIELD = Path("../shared/data/openfield/openfield-Pranav-2018-10-30")


@dataclass
class DemoSettings:
    """What --quick shrinks: data, iterations and the video clip."""

    individuals: int
    frames_per_individual: int
    size: tuple[int, int]
    iterations: int
    train_groups: int
    openfield_iterations: int
    video_frames: int | None  # None: the whole video


FULL = DemoSettings(16, 24, (160, 96), 300, 6, 150, None)
QUICK = DemoSettings(8, 6, (96, 64), 12, 4, 4, 24)


def demo_plan(out: Path, settings: DemoSettings, console: Console) -> Plan:
    """The shipped demo plan, resized, with pretrained arms where weights are found here."""
    plan = load_plan("demo", project=out / "synth")
    synth = dataclasses.replace(
        plan.synth,
        individuals=settings.individuals,
        frames_per_individual=settings.frames_per_individual,
        size=settings.size,
    )
    overrides = dict(plan.grid.overrides)
    overrides["iterations"] = settings.iterations
    overrides["snapshots"] = sorted({max(1, settings.iterations // 3), settings.iterations})
    overrides["augment"] = {**overrides.get("augment", {}), "crop": list(settings.size)}
    grid = dataclasses.replace(plan.grid, overrides=overrides)
    with_weights = [b for b in grid.backbones if find_local_weights(b)]
    extra = [dataclasses.replace(grid, backbones=with_weights, inits=["imagenet"])]
    if not with_weights:
        extra = []
        console.print(
            "note: no ImageNet weights found locally, so every arm trains from scratch; "
            "add them with 'poseshift weights import FILE --backbone NAME' to see the "
            "pretrained arms."
        )
    split = dataclasses.replace(plan.split, train_groups=settings.train_groups)
    return dataclasses.replace(plan, synth=synth, grid=grid, extra=extra, split=split)


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """Final normalized error per backbone x init x fraction, within vs out of domain."""
    from poseshift.study.analysis import final_results

    final = final_results(results)
    final = final[final["partition"].isin(["within", "ood"])]
    table = final.pivot_table(
        index=["imagenet_top1", "backbone", "init", "fraction"],
        columns="partition",
        values="normalized_error",
        aggfunc="mean",
    )
    return table.reset_index().sort_values(["fraction", "imagenet_top1"])


def print_summary(table: pd.DataFrame, console: Console) -> None:
    rich_table = Table(
        "backbone",
        "ImageNet top-1",
        "init",
        "fraction",
        "within",
        "ood",
        "ood / within",
        title="normalized error (pixel error / per-animal scale), lower is better",
    )
    for row in table.itertuples():
        within, ood = getattr(row, "within", float("nan")), getattr(row, "ood", float("nan"))
        rich_table.add_row(
            row.backbone,
            f"{row.imagenet_top1:.1f}",
            row.init,
            f"{row.fraction:g}",
            f"{within:.3f}",
            f"{ood:.3f}",
            f"{ood / within:.2f}x" if within else "-",
        )
    console.print(rich_table)


def cut_clip(video: Path, out: Path, frames: int) -> Path:
    """The first ``frames`` frames of a video, for a quick run."""
    reader = cv2.VideoCapture(str(video))
    fps = reader.get(cv2.CAP_PROP_FPS) or 30.0
    ok, frame = reader.read()
    if not ok:
        raise PoseshiftError(f"cannot read video {video}")
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(
        str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (frame.shape[1], frame.shape[0])
    )
    for _ in range(frames):
        writer.write(frame)
        ok, frame = reader.read()
        if not ok:
            break
    writer.release()
    reader.release()
    return out


def openfield_story(
    out: Path, settings: DemoSettings, console: Console, shared: Path = SHARED_OPENFIELD
) -> dict[str, Path]:
    """Train briefly on the real DeepLabCut example, then analyze and label its video."""
    from poseshift.predict.labeled_video import label_video
    from poseshift.train.config import load_preset, with_overrides
    from poseshift.train.trainer import RunSpec, train

    if not shared.is_dir():
        raise PoseshiftError(f"the openfield example project is not at {shared}")
    project = out / "openfield"
    if not project.exists():
        shutil.copytree(shared, project)  # the shared copy is read-only
    config = with_overrides(
        load_preset("fast"),
        iterations=settings.openfield_iterations,
        batch_size=8,
        num_workers=0,
        log_every=10,
        snapshots=[settings.openfield_iterations],
    )
    config = dataclasses.replace(
        config, augment=dataclasses.replace(config.augment, global_scale=0.5, crop=(256, 192))
    )
    spec = RunSpec(
        project=str(project.resolve()),
        backbone="mobilenetv2_035",
        init="scratch",
        preset="fast",
        train=config,
    )
    console.print(f"[bold]2/2[/] openfield: training {settings.openfield_iterations} iterations")
    train(spec, out / "openfield-run")
    video = project / "videos" / "m3v1mp4.mp4"
    if settings.video_frames:
        video = cut_clip(video, out / "openfield-clip" / "m3v1mp4_clip.mp4", settings.video_frames)
    labeled = label_video(out / "openfield-run", video, dest=out / "openfield-analysis")
    h5 = next(labeled.parent.glob(f"{video.stem}*.h5"))
    return {"h5": h5, "labeled_video": labeled}


def run_demo(
    out: str | Path = "poseshift-demo", quick: bool = False, openfield: Path = SHARED_OPENFIELD
) -> dict[str, Path]:
    """Run both parts; return the paths a newcomer wants to open."""
    from poseshift.study.figures import make_figures
    from poseshift.study.report import write_report
    from poseshift.study.runner import run_study

    out = Path(out)
    console = Console()
    settings = QUICK if quick else FULL
    started = time.perf_counter()
    plan = demo_plan(out, settings, console)
    console.print(f"[bold]1/2[/] study on the synthetic benchmark in {out / 'study'}")
    result = run_study(plan, out / "study")
    make_figures(out / "study")
    report = write_report(out / "study")
    print_summary(summary(result.results), console)
    paths = {"report": report, **openfield_story(out, settings, console, openfield)}
    console.print(f"report: {report.resolve()}")
    console.print(f"openfield poses (DeepLabCut .h5): {paths['h5'].resolve()}")
    console.print(f"labeled video: {paths['labeled_video'].resolve()}")
    console.print(f"demo finished in {time.perf_counter() - started:.0f} s")
    return paths
