"""The study's closer looks: learning curves (Figure 5), errors per bodypart, example frames."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.lines import Line2D

from poseshift.study.analysis import INITS, PARTITIONS, StudyTables, final_results
from poseshift.study.plotstyle import (
    ERROR_LABEL,
    INIT_LABELS,
    INIT_STYLES,
    PARTITION_COLORS,
    PARTITION_LABELS,
    display_name,
    new_figure,
    percent,
    present,
    skip,
)

MAX_CURVE_PANELS = 6
MAX_FRAMES = 4  # per partition
MAX_ANNOTATED_CELLS = 600  # heatmap cells get their value printed up to this many
PAPER_CURVES = "resnet50"  # Figure 5 shows ResNet-50 (at 5 % and 50 %)


def _curve_panels(curves: pd.DataFrame) -> list[tuple[str, float]]:
    """Which backbone x fraction learning curves to draw.

    Runs longer than the study's usual length (the paper's 600k-iteration runs) when there
    are any; otherwise every fraction of ResNet-50 (the paper's choice) or of the best
    backbone on ImageNet. At most ``MAX_CURVE_PANELS``.
    """
    keys = ["backbone", "imagenet_top1", "fraction"]
    combos = curves.groupby(keys)["iteration"].agg(["nunique", "max"]).reset_index()
    combos = combos[combos["nunique"] >= 2]
    if combos.empty:
        return []
    long = combos[combos["max"] > combos["max"].median()]
    if long.empty:
        backbones = set(combos["backbone"])
        name = (
            PAPER_CURVES
            if PAPER_CURVES in backbones
            else combos.loc[combos["imagenet_top1"].idxmax(), "backbone"]
        )
        long = combos[combos["backbone"] == name]
    long = long.sort_values(["imagenet_top1", "fraction"])
    return list(zip(long["backbone"], long["fraction"], strict=True))[:MAX_CURVE_PANELS]


def fig5_learning_curves(t: StudyTables) -> Figure | None:
    """Figure 5: normalized error vs training iterations, pretrained vs from scratch."""
    curves = t.curves.dropna(subset=["normalized_error_mean"])
    panels = _curve_panels(curves)
    if not panels:
        skip("fig5", "no run was evaluated at two or more snapshots")
        return None
    cols = min(len(panels), 3)
    rows = -(-len(panels) // cols)
    fig = new_figure(3.6 * cols, 3.0 * rows + 0.8)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    parts = present(curves["partition"], PARTITIONS)
    inits = present(curves["init"], INITS)
    for ax, (backbone, fraction) in zip(axes.flat, panels, strict=False):
        one = curves[(curves["backbone"] == backbone) & (curves["fraction"] == fraction)]
        for init in inits:
            for part in parts:
                r = one[(one["init"] == init) & (one["partition"] == part)]
                r = r.sort_values("iteration")
                mean, sd = r["normalized_error_mean"], r["normalized_error_std"].fillna(0)
                ax.plot(r["iteration"], mean, color=PARTITION_COLORS[part], ls=INIT_STYLES[init],
                        marker=".", lw=1.5)  # fmt: skip
                ax.fill_between(r["iteration"], mean - sd, mean + sd, alpha=0.12,
                                color=PARTITION_COLORS[part], linewidth=0)  # fmt: skip
        iterations = one["iteration"]
        if iterations.max() >= 10 * iterations.min():
            ax.set_xscale("log")
        ax.set_title(f"{display_name(backbone)}, {percent(fraction)} training data", fontsize=9)
        ax.set_xlabel("training iterations")
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel(ERROR_LABEL)
    fig.suptitle("Normalized error vs training iterations (mean ± sd over shuffles)")
    keys = [Line2D([], [], color=PARTITION_COLORS[p], lw=2, label=PARTITION_LABELS[p])
            for p in parts]  # fmt: skip
    keys += [Line2D([], [], color="0.3", ls=INIT_STYLES[i], label=INIT_LABELS[i]) for i in inits]
    fig.legend(
        keys, [str(k.get_label()) for k in keys], loc="outside lower center", ncols=len(keys)
    )
    return fig


def bodyparts_heatmap(t: StudyTables) -> Figure | None:
    """Final normalized error per bodypart x network, one panel per partition."""
    if t.bodyparts is None or t.bodyparts.empty:
        skip("bodyparts", "results_bodyparts.csv not found")
        return None
    final = final_results(t.bodyparts)
    final = final[final["fraction"] == t.fraction]
    if final["normalized_error"].notna().sum() == 0:
        skip("bodyparts", "no per-bodypart normalized error at the analysis fraction")
        return None
    order = {i: k for k, i in enumerate(INITS)}
    final = final.assign(_init=final["init"].map(order).fillna(len(order)))
    networks = final.sort_values(["_init", "imagenet_top1", "backbone"])[["backbone", "init"]]
    networks = list(networks.drop_duplicates().itertuples(index=False, name=None))
    bodyparts = list(final["bodypart"].drop_duplicates())
    means = final.groupby(["partition", "bodypart", "backbone", "init"])["normalized_error"].mean()
    parts = present(final["partition"], PARTITIONS)
    grids = {
        p: np.array([[means.get((p, bp, b, i), np.nan) for bp in bodyparts] for b, i in networks])
        for p in parts
    }
    vmax = max(float(np.nanmax(g)) if np.isfinite(g).any() else 0.0 for g in grids.values())
    norm = matplotlib.colors.Normalize(0, vmax or 1)
    fig = new_figure(max(6.0, 0.42 * len(bodyparts) + 3.2),
                     (0.2 * len(networks) + 0.5) * len(parts) + 1.6)  # fmt: skip
    axes = fig.subplots(len(parts), 1, squeeze=False, sharex=True)[:, 0]
    labels = [f"{display_name(b)}, {INIT_LABELS.get(i, i)}" for b, i in networks]
    for ax, part in zip(axes, parts, strict=True):
        grid = grids[part]
        image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap="magma_r", norm=norm)
        ax.set_yticks(range(len(networks)), labels=labels, fontsize=7)
        ax.grid(False)
        ax.set_title(PARTITION_LABELS[part], color=PARTITION_COLORS[part], loc="left")
        if grid.size <= MAX_ANNOTATED_CELLS:
            for (y, x), value in np.ndenumerate(grid):
                if np.isfinite(value):
                    ax.text(x, y, f"{value:.2f}", ha="center", va="center", fontsize=5.5,
                            color="white" if value > 0.6 * vmax else "black")  # fmt: skip
    axes[-1].set_xticks(range(len(bodyparts)), labels=bodyparts, rotation=50, ha="right")
    fig.colorbar(image, ax=axes, label=ERROR_LABEL, shrink=0.6)
    fig.suptitle(f"Normalized error per bodypart\n{percent(t.fraction)} training data, final "
                 "snapshot, mean over shuffles")  # fmt: skip
    return fig


def _plots_dir(study_dir: Path, row: pd.Series) -> Path | None:
    """The run's plot folder at its final snapshot, else at its latest plotted snapshot."""
    relative = row["run_dir"] if isinstance(row["run_dir"], str) else f"runs/{row['run_id']}"
    run_dir = study_dir / relative
    final = run_dir / "eval" / f"snapshot-{int(row['iteration']):07d}" / "plots"
    if any(final.glob("*.png")):
        return final
    plotted = sorted(p.parent for p in run_dir.glob("eval/snapshot-*/plots/*.png"))
    return plotted[-1] if plotted else None


def example_frames(t: StudyTables) -> Figure | None:
    """Within-domain and out-of-domain test images of the best run (lowest OOD error)."""
    ood = t.final[t.final["partition"] == "ood"].dropna(subset=["normalized_error"])
    best = None
    for _, row in ood.sort_values("normalized_error").iterrows():
        if (folder := _plots_dir(t.study_dir, row)) is not None:
            best = (row, folder)
            break
    if best is None:
        skip("example_frames", "no plotted frames (run the study with evaluate.plot > 0)")
        return None
    row, folder = best
    frames = {p: sorted(folder.glob(f"{p}-*.png"))[:MAX_FRAMES] for p in ("within", "ood")}
    frames = {p: f for p, f in frames.items() if f}
    if not frames:
        skip("example_frames", f"no within/ood frames in {folder}")
        return None
    first = imread(next(iter(frames.values()))[0])
    aspect = first.shape[0] / first.shape[1]
    cols = max(len(f) for f in frames.values())
    width = max(6.5, 2.6 * cols)  # wide enough for the title
    fig = new_figure(width, (width / cols * aspect + 0.35) * len(frames) + 0.8)
    axes = fig.subplots(len(frames), cols, squeeze=False)
    for ax_row, (part, files) in zip(axes, frames.items(), strict=True):
        for ax in ax_row:
            ax.set_axis_off()
        for ax, path in zip(ax_row, files, strict=False):
            ax.imshow(imread(path))
            ax.set_title(f"{PARTITION_LABELS[part]}: {path.stem}", fontsize=8,
                         color=PARTITION_COLORS[part])  # fmt: skip
    fig.suptitle(f"Best run: {row['run_id']}\nOOD normalized error "
                 f"{row['normalized_error']:.3f} at snapshot {int(row['iteration']):,}\n"
                 "green circle: human label, red cross: prediction", fontsize=9)  # fmt: skip
    return fig
