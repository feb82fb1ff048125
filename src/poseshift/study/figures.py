"""The paper's figures, redrawn from the results table into ``DIR/figures/`` (PNG + SVG).

``make_figures`` draws every figure in ``FIGURES``; a figure whose data the study lacks
(one init only, a single fraction, no bodypart table, no plotted frames) is skipped with a
logged reason, and any stale copy of it is removed so the report never shows old numbers.
Figure functions take the study's tables and return a matplotlib Figure or None.
"""

# ruff: noqa: RUF001  (typographic times, minus and dash signs are meant: readers see them)

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from poseshift.study import figures_detail as detail
from poseshift.study.analysis import INITS, PARTITIONS, StudyTables
from poseshift.study.plotstyle import (
    ERROR_LABEL,
    INIT_LABELS,
    INIT_MARKERS,
    INIT_STYLES,
    PARTITION_COLORS,
    PARTITION_LABELS,
    RC,
    backbone_color,
    backbone_legend,
    backbones_by_top1,
    fraction_axis,
    init_keys,
    new_figure,
    percent,
    present,
    save_figure,
    skip,
)

_GAIN_MAPS = {"train": "Blues", "within": "Reds", "ood": "RdPu"}


def _fit_line(
    ax, t: StudyTables, init: str, part: str, x: np.ndarray, color: str, name: str
) -> None:
    """The regression line of init x partition, labelled with slope, R² and p."""
    fit = t.fit(init, part)
    if fit is None:
        return
    xs = np.linspace(np.nanmin(x), np.nanmax(x), 50)
    ax.plot(xs, fit["intercept"] + fit["slope"] * xs, color=color, ls=INIT_STYLES[init], lw=1.3,
            label=f"{name}: {fit['slope_pct']:+.2f} %/pt, R² {fit['r2']:.2f}, "
                  f"p {fit['p']:.2g}")  # fmt: skip


def _fit_legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=7, frameon=True, framealpha=0.85, edgecolor="0.85")


def fig2b_error_vs_imagenet(t: StudyTables) -> Figure | None:
    """Figure 2B / 9B: final normalized error vs ImageNet top-1, one panel per partition."""
    at = t.summary[t.summary["fraction"] == t.fraction]
    if at["normalized_error_mean"].notna().sum() == 0:
        skip("fig2b", "no normalized error at the analysis fraction")
        return None
    parts, inits = present(at["partition"], PARTITIONS), present(at["init"], INITS)
    shuffles = t.final[t.final["fraction"] == t.fraction]
    fig = new_figure(3.7 * len(parts), 3.9)
    axes = fig.subplots(1, len(parts), squeeze=False)[0]
    for ax, part in zip(axes, parts, strict=True):
        for init in inits:
            rows = at[(at["partition"] == part) & (at["init"] == init)]
            one = shuffles[(shuffles["partition"] == part) & (shuffles["init"] == init)]
            ax.scatter(one["imagenet_top1"], one["normalized_error"], s=10, alpha=0.35,
                       color=[backbone_color(b) for b in one["backbone"]],
                       marker=INIT_MARKERS[init], linewidths=0)  # fmt: skip
            for r in rows.itertuples():
                color = backbone_color(r.backbone)
                ax.errorbar(r.imagenet_top1, r.normalized_error_mean,
                            yerr=np.nan_to_num(r.normalized_error_std), fmt=INIT_MARKERS[init],
                            color=color, mfc=color if init == "imagenet" else "white",
                            ms=6, capsize=2, zorder=3)  # fmt: skip
            name = "pretrained" if init == "imagenet" else INIT_LABELS[init]
            _fit_line(ax, t, init, part, rows["imagenet_top1"].to_numpy(), "0.25", name)
        ax.set_title(PARTITION_LABELS[part].capitalize(), color=PARTITION_COLORS[part])
        ax.set_xlabel("ImageNet top-1 accuracy (%)")
        _fit_legend(ax)
    axes[0].set_ylabel(ERROR_LABEL)
    fig.suptitle(f"Normalized error (pixel error / nose–eye distance) vs ImageNet top-1 — "
                 f"{percent(t.fraction)} training data, final snapshot\n(marker: mean ± sd "
                 "over shuffles, faint: each shuffle; line: least-squares fit over "
                 "backbones)")  # fmt: skip
    backbone_legend(fig, backbones_by_top1(at), init_keys(inits))
    return fig


def _fraction_panel(ax, t: StudyTables, init: str, part: str, column: str, scale: float) -> None:
    """One line per backbone over training fractions; faint lines are single shuffles."""
    s = t.summary[(t.summary["init"] == init) & (t.summary["partition"] == part)]
    f = t.final[(t.final["init"] == init) & (t.final["partition"] == part)]
    for backbone in backbones_by_top1(s):
        color = backbone_color(backbone)
        for _, one in f[f["backbone"] == backbone].groupby("shuffle"):
            one = one.sort_values("fraction")
            ax.plot(one["fraction"] * 100, one[column] * scale, color=color, alpha=0.25, lw=0.7,
                    ls=INIT_STYLES[init])  # fmt: skip
        rows = s[s["backbone"] == backbone].sort_values("fraction")
        ax.plot(rows["fraction"] * 100, rows[f"{column}_mean"] * scale, color=color,
                ls=INIT_STYLES[init], marker=INIT_MARKERS[init], ms=3.5, lw=1.6)  # fmt: skip


def _fraction_grid(
    t: StudyTables, column: str, scale: float, ylabel: str, title: str, gain_row: bool
) -> Figure | None:
    s = t.summary
    fractions = sorted(s["fraction"].unique())
    parts, inits = present(s["partition"], PARTITIONS), present(s["init"], INITS)
    gain = gain_row and not t.gains.empty
    n_rows = len(inits) + gain
    fig = new_figure(3.4 * len(parts), 2.7 * n_rows + 0.7)
    axes = fig.subplots(n_rows, len(parts), squeeze=False, sharex=True)
    for i, init in enumerate(inits):
        for j, part in enumerate(parts):
            if i:  # same partition, same scale: pretrained vs scratch at a glance
                axes[i][j].sharey(axes[0][j])
            _fraction_panel(axes[i][j], t, init, part, column, scale)
            axes[i][j].set_title(f"{INIT_LABELS[init]} · {PARTITION_LABELS[part]}", fontsize=9)
        axes[i][0].set_ylabel(ylabel)
    if gain:
        for j, part in enumerate(parts):
            ax = axes[-1][j]
            g = t.gains[t.gains["partition"] == part]
            for backbone in backbones_by_top1(g):
                rows = g[g["backbone"] == backbone].sort_values("fraction")
                ax.plot(rows["fraction"] * 100, rows["pck_ratio"], color=backbone_color(backbone),
                        marker="o", ms=3.5)  # fmt: skip
            ax.axhline(1, color="0.5", ls=":", lw=1)
            ax.set_title(f"gain · {PARTITION_LABELS[part]}", fontsize=9)
        axes[-1][0].set_ylabel("PCK gain (pretrained / scratch)")
    for ax in axes.flat:
        fraction_axis(ax, fractions)
    for ax in axes[-1]:
        ax.set_xlabel("training set fraction (%)")
    fig.suptitle(title)
    backbone_legend(fig, backbones_by_top1(s), init_keys(inits))
    return fig


def fig2df_error_vs_fraction(t: StudyTables) -> Figure | None:
    """Figure 2D / 2F: normalized error vs training fraction, with and without pretraining."""
    if t.summary["fraction"].nunique() < 2:
        skip("fig2df", "needs at least two training fractions")
        return None
    return _fraction_grid(t, "normalized_error", 1.0, ERROR_LABEL,
                          "Normalized error (pixel error / nose–eye distance) vs training set "
                          "fraction (final snapshot, mean over shuffles; faint: each shuffle)",
                          gain_row=False)  # fmt: skip


def fig3_pck_vs_fraction(t: StudyTables) -> Figure | None:
    """Figures 3 / 8: PCK vs training fraction with and without pretraining, and its gain."""
    if t.summary["fraction"].nunique() < 2 or t.summary["pck_mean"].isna().all():
        skip("fig3", "needs PCK at two or more training fractions")
        return None
    threshold = t.results["pck_threshold"].dropna()
    at = f"{threshold.iloc[0]:g}" if len(threshold) else "0.3"
    return _fraction_grid(t, "pck", 100.0, f"PCK@{at} (%)",
                          f"Percent correct keypoints (within {at} × nose–eye distance) vs "
                          "training set fraction; last row: gain from pretraining",
                          gain_row=True)  # fmt: skip


def fig4_gain(t: StudyTables) -> Figure | None:
    """Figure 4: transfer-learning gain (scratch / pretrained error) vs ImageNet top-1."""
    g = t.gains.dropna(subset=["gain"])
    if g.empty:
        skip("fig4", "needs ImageNet-pretrained and from-scratch runs of a backbone")
        return None
    parts = present(g["partition"], PARTITIONS)
    fractions = sorted(g["fraction"].unique())
    fig = new_figure(3.4 * (len(parts) + 1), 3.6)
    axes = fig.subplots(1, len(parts) + 1, sharey=True, squeeze=False)[0]
    at = g[g["fraction"] == t.fraction]
    for part in parts:
        rows = at[at["partition"] == part].sort_values("imagenet_top1")
        axes[0].plot(rows["imagenet_top1"], rows["gain"], color=PARTITION_COLORS[part], lw=1.6,
                     label=PARTITION_LABELS[part])  # fmt: skip
        axes[0].scatter(rows["imagenet_top1"], rows["gain"], zorder=3, s=24,
                        color=[backbone_color(b) for b in rows["backbone"]])  # fmt: skip
    axes[0].set_title(f"A: all partitions, {percent(t.fraction)} training data", fontsize=9)
    for ax, part in zip(axes[1:], parts, strict=True):
        cmap = matplotlib.colormaps[_GAIN_MAPS.get(part, "Greys")]
        for k, fraction in enumerate(fractions):
            rows = g[(g["partition"] == part) & (g["fraction"] == fraction)]
            rows = rows.sort_values("imagenet_top1")
            shade = 0.35 + 0.6 * k / max(len(fractions) - 1, 1)
            ax.plot(rows["imagenet_top1"], rows["gain"], color=cmap(shade), marker="o", ms=3.5,
                    label=percent(fraction))  # fmt: skip
        ax.set_title(f"{PARTITION_LABELS[part]}, by training fraction", fontsize=9)
    for ax in axes:
        ax.axhline(1, color="0.5", ls=":", lw=1)
        ax.set_xlabel("ImageNet top-1 accuracy (%)")
        ax.legend(loc="upper left", fontsize=7)
    axes[0].set_ylabel("gain = scratch / pretrained normalized error")
    fig.suptitle("Transfer-learning gain: how many times lower the error is with ImageNet "
                 "pretraining (final snapshot, means over shuffles)")  # fmt: skip
    backbone_legend(fig, backbones_by_top1(g))
    return fig


def fig9_scratch_train_vs_test(t: StudyTables) -> Figure | None:
    """Figure 9: from scratch, train vs within-domain test error (by fraction and top-1)."""
    s = t.summary[
        (t.summary["init"] == "scratch") & t.summary["partition"].isin(["train", "within"])
    ]
    if s.empty:
        skip("fig9", "no from-scratch runs")
        return None
    parts = present(s["partition"], ("train", "within"))
    fig = new_figure(9.0, 3.9)
    ax_a, ax_b = fig.subplots(1, 2)
    styles = {"train": ":", "within": "-"}
    for backbone in backbones_by_top1(s):
        for part in parts:
            rows = s[(s["backbone"] == backbone) & (s["partition"] == part)]
            rows = rows.sort_values("fraction")
            ax_a.plot(rows["fraction"] * 100, rows["normalized_error_mean"], ls=styles[part],
                      color=backbone_color(backbone), marker="o", ms=3)  # fmt: skip
    fraction_axis(ax_a, sorted(s["fraction"].unique()))
    ax_a.set(xlabel="training set fraction (%)", ylabel=ERROR_LABEL,
             title="A: error vs training fraction")  # fmt: skip
    at = s[s["fraction"] == t.fraction]
    for part in parts:
        rows = at[at["partition"] == part]
        ax_b.scatter(rows["imagenet_top1"], rows["normalized_error_mean"], s=30, zorder=3,
                     color=[backbone_color(b) for b in rows["backbone"]],
                     edgecolors=PARTITION_COLORS[part], linewidths=1.5)  # fmt: skip
        _fit_line(ax_b, t, "scratch", part, rows["imagenet_top1"].to_numpy(),
                  PARTITION_COLORS[part], part)  # fmt: skip
    ax_b.set(xlabel="ImageNet top-1 accuracy (%)", ylabel=ERROR_LABEL,
             title=f"B: error vs ImageNet top-1 at {percent(t.fraction)} "
                   "(ring: partition)")  # fmt: skip
    _fit_legend(ax_b)
    fig.suptitle("Training from scratch: train vs within-domain test error (final snapshot)")
    keys = [Line2D([], [], color="0.3", ls=styles[p], label=PARTITION_LABELS[p]) for p in parts]
    backbone_legend(fig, backbones_by_top1(s), keys)
    return fig


@dataclass(frozen=True)
class FigureSpec:
    """A figure of the report: file stem, title, caption (with the paper figure it redraws)."""

    stem: str
    title: str
    caption: str
    draw: Callable[[StudyTables], Figure | None]


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("fig2b_error_vs_imagenet", "Normalized error vs ImageNet top-1 (paper Fig. 2B)",
               "Each network's final normalized error at the analysis fraction against its "
               "ImageNet top-1; lines are least-squares fits over backbones (solid: pretrained, "
               "dashed: from scratch), slopes in % of the nose–eye distance per ImageNet point.",
               fig2b_error_vs_imagenet),
    FigureSpec("fig2df_error_vs_fraction", "Error vs training fraction (paper Fig. 2D, 2F)",
               "Normalized error on train, within-domain and out-of-domain test images as the "
               "training set grows; top row pretrained, bottom row from scratch.",
               fig2df_error_vs_fraction),
    FigureSpec("fig3_pck_vs_fraction", "PCK vs training fraction and its gain (paper Figs. 3, 8)",
               "Percent of keypoints within 0.3 nose–eye distances of the label; the last row is "
               "the ratio pretrained / scratch PCK.", fig3_pck_vs_fraction),
    FigureSpec("fig4_gain", "Transfer-learning gain (paper Fig. 4)",
               "Scratch / pretrained normalized error per backbone; above 1 pretraining helps. "
               "A: at the analysis fraction; right: per partition, light to dark = 5 to 90 %.",
               fig4_gain),
    FigureSpec("fig5_learning_curves", "Error vs training iterations (paper Fig. 5)",
               "Normalized error at every evaluated snapshot (solid: pretrained, dashed: from "
               "scratch); can longer training from scratch catch up, within and out of domain?",
               detail.fig5_learning_curves),
    FigureSpec("fig9_scratch_train_vs_test", "From scratch: train vs test (paper Fig. 9)",
               "Networks trained from scratch: training error (dotted) vs within-domain test "
               "error (solid), and both against ImageNet top-1.", fig9_scratch_train_vs_test),
    FigureSpec("bodyparts", "Error per bodypart",
               "Final normalized error of each keypoint (mean over shuffles) at the analysis "
               "fraction; blank cells had no labeled keypoint.", detail.bodyparts_heatmap),
    FigureSpec("example_frames", "Example frames (paper Figs. 2C, 7)",
               "Test images of the run with the lowest out-of-domain error: green circles are "
               "the human labels, red crosses the predictions.", detail.example_frames),
)  # fmt: skip


def make_figures(study_dir: str | Path) -> list[Path]:
    """Draw every figure the study's data allows into DIR/figures/; returns the files."""
    tables = StudyTables.load(study_dir)
    out = Path(study_dir) / "figures"
    written: list[Path] = []
    with matplotlib.rc_context(RC):  # type: ignore[arg-type]  # stubs list literal keys only
        for spec in FIGURES:
            fig = spec.draw(tables)
            if fig is None:
                for suffix in (".png", ".svg"):
                    (out / spec.stem).with_suffix(suffix).unlink(missing_ok=True)
                continue
            written += save_figure(fig, out, spec.stem)
    return written
