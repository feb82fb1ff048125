"""One look for every study figure: names, colours per backbone and partition, saving.

A backbone keeps its colour in every figure and every study: its family picks a colour
map (MobileNetV2 greens, ResNet oranges, EfficientNet purples) and its rank in the
backbone table (ImageNet top-1 order) picks the shade, darker = better on ImageNet, as in
the paper's figures. Partitions use the paper's colours: train blue, within-domain test
red, out-of-domain test pink.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from poseshift.fsutil import write_atomic
from poseshift.models.backbones import BACKBONES

log = logging.getLogger("poseshift.study.figures")
PARTITION_COLORS = {"train": "#1f77b4", "within": "#d62728", "ood": "#e377c2"}
PARTITION_LABELS = {"train": "train", "within": "test, within domain", "ood": "test, out of domain"}
INIT_LABELS = {"imagenet": "ImageNet-pretrained", "scratch": "from scratch"}
INIT_STYLES = {"imagenet": "-", "scratch": "--"}
INIT_MARKERS = {"imagenet": "o", "scratch": "s"}
_FAMILIES = {
    "mobilenetv2": "Greens",
    "resnet": "Oranges",
    "efficientnet_lite": "Blues",
    "efficientnet": "Purples",
}
_FALLBACK = matplotlib.color_sequences["tab10"]
ERROR_LABEL = "normalized error"  # pixel error / nose-eye distance (Figure 2A)
PNG_DPI = 110
RC: dict[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "svg.hashsalt": "poseshift",  # stable SVG ids, so unchanged figures give unchanged files
}


def display_name(backbone: str) -> str:
    """The paper's names: 'mobilenetv2_035' -> 'MobileNetV2-0.35', 'resnet50' -> 'ResNet-50'."""
    if m := re.fullmatch(r"mobilenetv2_(\d)(\d+)", backbone):
        return f"MobileNetV2-{float(f'{m[1]}.{m[2]}'):g}"
    if m := re.fullmatch(r"resnet(\d+)", backbone):
        return f"ResNet-{m[1]}"
    if m := re.fullmatch(r"efficientnet_(b\d+)", backbone):
        return f"EfficientNet-{m[1].upper()}"
    if m := re.fullmatch(r"efficientnet_lite(\d)", backbone):
        return f"EfficientNet-Lite{m[1]}"
    return backbone


def _family(backbone: str) -> str | None:
    return next((f for f in _FAMILIES if backbone.startswith(f)), None)


def backbone_color(backbone: str) -> tuple[float, float, float, float]:
    """The backbone's colour: family colour map, shade by rank in the backbone table."""
    family = _family(backbone)
    if family is None:  # a stable pick for names outside the known families
        return matplotlib.colors.to_rgba(_FALLBACK[sum(map(ord, backbone)) % len(_FALLBACK)])
    members = [b for b in BACKBONES if _family(b) == family]
    rank = members.index(backbone) if backbone in members else len(members) - 1
    shade = 0.45 + 0.5 * rank / max(len(members) - 1, 1)
    return matplotlib.colormaps[_FAMILIES[family]](shade)


def new_figure(width: float, height: float) -> Figure:
    """A figure not attached to pyplot (no global state); saved through the Agg canvas."""
    return Figure(figsize=(width, height), layout="constrained")


def percent(fraction: float | None) -> str:
    return "?" if fraction is None else f"{fraction * 100:g} %"


def save_figure(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg`` atomically; returns both paths."""
    png, svg = out_dir / f"{stem}.png", out_dir / f"{stem}.svg"
    write_atomic(png, lambda tmp: fig.savefig(tmp, format="png", dpi=PNG_DPI))
    fig.set_layout_engine("none")  # keep the layout just computed: the SVG needs no second one
    write_atomic(svg, lambda tmp: fig.savefig(tmp, format="svg", metadata={"Date": None}))
    return [png, svg]


def skip(name: str, why: str) -> None:
    """Log why a figure is not drawn; figure functions return this (None)."""
    log.info("figure %s skipped: %s", name, why)


def present(values: pd.Series, order: tuple[str, ...]) -> list[str]:
    """The values of ``order`` that occur, in that order."""
    seen = set(values)
    return [v for v in order if v in seen]


def backbones_by_top1(df: pd.DataFrame) -> list[str]:
    return list(df.sort_values(["imagenet_top1", "backbone"])["backbone"].drop_duplicates())


def backbone_legend(fig: Figure, backbones: list[str], extra: Sequence[Line2D] = ()) -> None:
    """One legend under the figure: a colour per backbone (plus optional style keys)."""
    handles = [Line2D([], [], color=backbone_color(b), marker="o", lw=2) for b in backbones]
    labels = [display_name(b) for b in backbones] + [str(h.get_label()) for h in extra]
    ncols = min(len(labels), max(2, int(fig.get_figwidth() / 1.5)))
    fig.legend([*handles, *extra], labels, loc="outside lower center", ncols=ncols)


def init_keys(inits: list[str]) -> list[Line2D]:
    return [
        Line2D([], [], color="0.3", ls=INIT_STYLES[i], marker=INIT_MARKERS[i],
               mfc="0.3" if i == "imagenet" else "white", label=INIT_LABELS[i])
        for i in inits
    ]  # fmt: skip


def fraction_axis(ax, fractions: list[float]) -> None:
    """Log-spaced training fractions (5, 10, 20, 50, 90 %) labelled by their value."""
    ax.set_xscale("log")
    ax.set_xticks([f * 100 for f in fractions], labels=[f"{f * 100:g}" for f in fractions])
    ax.minorticks_off()
