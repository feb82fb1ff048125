"""The Figure 10-style plot: FPS vs batch size, log axes, one panel per frame size."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from poseshift.fsutil import write_atomic

STYLES = {"model": ("-", "o", "model only"), "video": ("--", "s", "end to end (video)")}


def plot_speed(frame: pd.DataFrame, path: str | Path) -> Path:
    """One line per backbone (solid: model only, dashed: end to end), skipped cells omitted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    sizes = sorted(set(frame["size"]))
    backbones = list(dict.fromkeys(frame["backbone"]))
    colors = {b: f"C{i}" for i, b in enumerate(backbones)}
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.2 * len(sizes), 3.8), squeeze=False)
    for ax, size in zip(axes[0], sizes, strict=True):
        for backbone in backbones:
            for mode, (line, marker, label) in STYLES.items():
                rows = frame[
                    (frame["size"] == size)
                    & (frame["backbone"] == backbone)
                    & (frame["mode"] == mode)
                    & frame["fps"].notna()
                ].sort_values("batch_size")
                if rows.empty:
                    continue
                ax.plot(
                    rows["batch_size"],
                    rows["fps"],
                    line,
                    marker=marker,
                    color=colors[backbone],
                    label=f"{backbone}, {label}",
                )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        batches = sorted(set(frame["batch_size"]))
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_title(f"Video frame size: {size} x {size}")
        ax.set_xlabel("Batch size")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("Frames per second")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8)
    context = [str(frame[c].iloc[0]) for c in ("device", "precision") if c in frame]
    fig.suptitle("Inference speed vs batch size" + (f" ({', '.join(context)})" if context else ""))
    fig.tight_layout(rect=(0, 0.06 + 0.05 * math.ceil(len(labels) / 4), 1, 1))
    try:
        return write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    finally:
        plt.close(fig)
