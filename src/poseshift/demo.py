"""``poseshift demo``: the whole story on a laptop CPU.

1. A small robustness study on the synthetic benchmark (the shipped ``demo`` plan): three
   backbones of 60-78 % ImageNet top-1, each from real ImageNet weights and from scratch,
   errors within and out of domain, the paper's claims checked, figures and a report.
2. The product on real data nobody here made: a short training run on DeepLabCut's openfield
   example project, then its video analyzed into a DeepLabCut-style .h5 and a labeled video.

Everything the demo needs from outside (the ImageNet weights, the openfield project) is
located or downloaded first; offline with something missing, it stops before any work with
one line naming what is missing and how to provide it.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from poseshift.errors import PoseshiftError
from poseshift.study.plan import Plan, load_plan


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


FULL = DemoSettings(16, 24, (128, 80), 250, 6, 150, None)
QUICK = DemoSettings(8, 6, (96, 64), 12, 4, 4, 24)


def demo_plan(out: Path, settings: DemoSettings) -> Plan:
    """The shipped demo plan, resized."""
    plan = load_plan("demo", project=out / "synth")
    assert plan.synth is not None  # the shipped demo plan generates its benchmark
    synth = dataclasses.replace(
        plan.synth,
        individuals=settings.individuals,
        frames_per_individual=settings.frames_per_individual,
        size=settings.size,
    )
    overrides = dict(plan.grid.overrides)
    overrides["iterations"] = settings.iterations
    overrides["warmup_iters"] = max(1, settings.iterations // 10)  # as in the shipped plan
    overrides["snapshots"] = sorted({max(1, settings.iterations // 3), settings.iterations})
    overrides["checkpoint_every"] = settings.iterations
    overrides["augment"] = {**overrides.get("augment", {}), "crop": list(settings.size)}
    grid = dataclasses.replace(plan.grid, overrides=overrides)
    split = dataclasses.replace(plan.split, train_groups=settings.train_groups)
    return dataclasses.replace(plan, synth=synth, grid=grid, split=split)


def gather_inputs(plan: Plan, openfield: Path | None, console: Console) -> Path:
    """Locate (or download) every input before any work; returns the openfield project.

    Offline with something missing: one line naming all that is missing and how to provide it.
    """
    from poseshift.datasets.openfield import openfield_problem, openfield_project
    from poseshift.models.weights_lookup import locate_imagenet_weights

    backbones = [b for g in [plan.grid, *plan.extra] if "imagenet" in g.inits for b in g.backbones]
    problems = [] if (why := openfield_problem(openfield)) is None else [why]
    for backbone in dict.fromkeys(backbones):
        try:
            path = locate_imagenet_weights(backbone)
            console.print(f"ImageNet weights for {backbone}: {path}")
        except PoseshiftError as exc:
            problems.append(str(exc))
    if problems:
        raise PoseshiftError(" | ".join(problems))
    return openfield_project(openfield)


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


def pretraining_sentence(table: pd.DataFrame) -> str:
    """How much ImageNet pretraining cut the errors, in one sentence (means over backbones)."""
    means = table.groupby("init")[["within", "ood"]].mean()
    if not {"imagenet", "scratch"} <= set(means.index):
        return "Pretraining was not measured: the study has no pretrained/scratch pair."
    parts = []
    for partition, label in (("ood", "out-of-domain"), ("within", "within-domain")):
        scratch, pretrained = means.loc["scratch", partition], means.loc["imagenet", partition]
        cut = (1 - pretrained / scratch) * 100
        verb = "cut" if cut >= 0 else "raised"
        parts.append(
            f"{verb} the {label} error by {abs(cut):.0f} % ({scratch:.3f} -> {pretrained:.3f})"
        )
    return (
        f"ImageNet pretraining {parts[0]} and {parts[1]} (normalized error, mean over "
        f"{table['backbone'].nunique()} backbones)."
    )


def adaptation_sentence(results: pd.DataFrame) -> str:
    """How AdaBN on each new individual's own frames changed the out-of-domain error."""
    from poseshift.study.analysis import final_results

    final = final_results(results)
    by = final.pivot_table(index="run_id", columns="partition", values="normalized_error")
    if "ood_adapted" not in by:
        return "Adaptation was not measured: the plan has no adapted arm (evaluate.adapted)."
    both = by[["ood", "ood_adapted"]].dropna()
    plain, adapted = both["ood"].mean(), both["ood_adapted"].mean()
    change = (adapted / plain - 1) * 100
    better = int((both["ood_adapted"] < both["ood"]).sum())
    return (
        f"Test-time adaptation (AdaBN on each new individual's unlabeled frames) "
        f"{'cut' if change < 0 else 'raised'} the out-of-domain error by {abs(change):.0f} % "
        f"({plain:.3f} -> {adapted:.3f}, mean over {len(both)} runs; better in {better})."
    )


def outliers_sentence(study_dir: Path, results: pd.DataFrame, n: int = 5) -> str:
    """How much worse the frames ``poseshift outliers`` picks are than random ones."""
    from poseshift.evaluate.outlier_picks import pick_errors

    runs = sorted(set(results["run_dir"].dropna()))
    checks = [pick_errors(study_dir / run, n=n) for run in runs]
    picked = float(np.mean([c["picked"] for c in checks]))
    random = float(np.mean([c["random"] for c in checks]))
    likelihood = float(np.mean([c["lowest_likelihood"] for c in checks]))
    return (
        f"Outlier picks: the {n} frames per new individual that 'poseshift outliers' picks "
        f"have {picked / random:.2f}x the error of random frames ({picked:.3f} vs {random:.3f}"
        f"; lowest likelihood alone: {likelihood:.3f}; mean over {len(checks)} runs)."
    )


def claims_line(study_dir: Path) -> str:
    """How many of the paper's claims this study reproduced, did not, and could not measure."""
    from poseshift.study.analysis import StudyTables
    from poseshift.study.claims import NOT_MEASURED, NOT_REPRODUCED, REPRODUCED, check_claims

    verdicts = [c.verdict for c in check_claims(StudyTables.load(study_dir))]
    counts = {v: verdicts.count(v) for v in (REPRODUCED, NOT_REPRODUCED, NOT_MEASURED)}
    return ", ".join(f"{n} {v}" for v, n in counts.items()) + " of the paper's claims"


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
        str(out),
        cv2.VideoWriter_fourcc(*"mp4v"),  # type: ignore[attr-defined]  # not in cv2 stubs
        fps,
        (frame.shape[1], frame.shape[0]),
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
    out: Path, settings: DemoSettings, console: Console, shared: Path
) -> dict[str, Path]:
    """Train briefly on the real DeepLabCut example, then analyze and label its video."""
    from poseshift.predict.labeled_video import label_video
    from poseshift.spec import RunSpec, resolve_settings
    from poseshift.train.trainer import train

    project = out / "openfield"
    if not project.exists():
        shutil.copytree(shared, project)  # the shared copy is read-only
    config, execution = resolve_settings(
        "fast",
        {
            "iterations": settings.openfield_iterations,
            "batch_size": 8,
            "num_workers": 0,
            "log_every": 10,
            "snapshots": [settings.openfield_iterations],
            "augment": {"global_scale": 0.5, "crop": [256, 192]},
        },
        where="the demo's openfield run",
    )
    spec = RunSpec(
        project=str(project.resolve()),
        backbone="mobilenetv2_035",
        init="scratch",
        preset="fast",
        train=config,
        execution=execution,
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
    out: str | Path = "poseshift-demo", quick: bool = False, openfield: Path | None = None
) -> dict[str, Path]:
    """Run both parts; return the paths a newcomer wants to open."""
    from poseshift.study.figures import make_figures
    from poseshift.study.report import write_report
    from poseshift.study.runner import run_study

    out = Path(out)
    console = Console()
    settings = QUICK if quick else FULL
    started = time.perf_counter()
    plan = demo_plan(out, settings)
    project = gather_inputs(plan, openfield, console)
    console.print(f"[bold]1/2[/] study on the synthetic benchmark in {out / 'study'}")
    result = run_study(plan, out / "study")
    make_figures(out / "study")
    report = write_report(out / "study")
    table = summary(result.results)
    print_summary(table, console)
    console.print(pretraining_sentence(table))
    console.print(adaptation_sentence(result.results))
    console.print(outliers_sentence(out / "study", result.results))
    console.print(f"claims table: {claims_line(out / 'study')}")
    paths = {"report": report, **openfield_story(out, settings, console, project)}
    console.print(f"report: {report.resolve()}")
    console.print(f"openfield poses (DeepLabCut .h5): {paths['h5'].resolve()}")
    console.print(f"labeled video: {paths['labeled_video'].resolve()}")
    console.print(f"demo finished in {time.perf_counter() - started:.0f} s")
    return paths
