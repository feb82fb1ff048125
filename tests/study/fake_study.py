"""A fake study directory with the runner's table layout and known, paper-like numbers."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from poseshift.study.figures import make_figures

TOP1 = {
    "mobilenetv2_035": 60.092,
    "mobilenetv2_050": 65.95,
    "mobilenetv2_075": 69.952,
    "mobilenetv2_100": 72.976,
    "resnet50": 76.13,
    "resnet101": 77.376,
}
BODYPARTS = ("Nose", "Eye", "Wither", "Hip", "Offfrontfoot")
# Per-ImageNet-point slope of the normalized error and its level at top-1 = 60, per
# init x partition: pretrained errors fall steeply out of domain (the paper's Figure 2B).
SLOPE = {
    ("imagenet", "train"): -0.001,
    ("imagenet", "within"): -0.0033,
    ("imagenet", "ood"): -0.016,
    ("scratch", "train"): -0.001,
    ("scratch", "within"): -0.0026,
    ("scratch", "ood"): -0.0021,
}
LEVEL = {
    ("imagenet", "train"): 0.06,
    ("imagenet", "within"): 0.2,
    ("imagenet", "ood"): 0.55,
    ("scratch", "train"): 0.1,
    ("scratch", "within"): 0.35,
    ("scratch", "ood"): 0.9,
}


def error_of(backbone: str, init: str, partition: str, fraction: float) -> float:
    """The fake study's exact final normalized error (before per-shuffle noise)."""
    base = LEVEL[init, partition] + SLOPE[init, partition] * (TOP1[backbone] - 60)
    return base * (1 + 0.25 * (0.9 - fraction))


def make_study(
    root: Path,
    backbones: tuple[str, ...] = tuple(TOP1),
    inits: tuple[str, ...] = ("imagenet", "scratch"),
    fractions: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5, 0.9),
    shuffles: tuple[int, ...] = (1, 2, 3),
    iterations: tuple[int, ...] = (10_000, 50_000, 100_000),
    noise: float = 0.02,
    spread: float = 0.0,
    plots: bool = True,
    long_runs: bool = True,
) -> Path:
    """Write results.csv, results_bodyparts.csv, status.csv, plan.yaml and plot PNGs.

    ``noise``: relative per-row noise; ``spread``: relative per-backbone offset, larger
    from scratch (so its fits are weaker, as in the paper). Both 0: exact ``error_of``.
    """
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    offset = {(b, i, p): spread * (2.5 if i == "scratch" else 1) * rng.standard_normal()
              for b in backbones for i in inits for p in ("train", "within", "ood")}  # fmt: skip
    rows, parts, status = [], [], []
    runs = [
        (b, i, s, f, "paper", iterations)
        for b in backbones
        for i in inits
        for s in shuffles
        for f in fractions
    ]
    if long_runs and "resnet50" in backbones:
        long = (*iterations, 300_000, 600_000)
        runs += [("resnet50", i, 1, f, "paper-long", long) for i in inits for f in (0.05, 0.5)]
    for backbone, init, shuffle, fraction, preset, its in runs:
        run_id = f"{backbone}-{init}-s{shuffle}-f{fraction:g}-{preset}"
        status.append({"run_id": run_id, "status": "done", "error": ""})
        for it in its:
            decay = (its[-1] / it) ** (0.25 if init == "scratch" else 0.1)
            for partition in ("train", "within", "ood"):
                err = error_of(backbone, init, partition, fraction) * decay
                err *= 1 + offset[backbone, init, partition] + noise * rng.standard_normal()
                pck = pck_of(err)
                key = {"run_id": run_id, "backbone": backbone, "init": init,
                       "imagenet_top1": TOP1[backbone], "shuffle": shuffle,
                       "fraction": fraction, "preset": preset, "iteration": it,
                       "partition": partition}  # fmt: skip
                rows.append({**key, "n_images": 40, "error_px": err * 20,
                             "normalized_error": err, "pck": pck, "pck_threshold": 0.3,
                             "run_dir": f"runs/{run_id}"})  # fmt: skip
                for k, part in enumerate(BODYPARTS):
                    e = err * (0.6 + 0.2 * k)
                    parts.append({**key, "bodypart": part, "n_images": 40, "error_px": e * 20,
                                  "normalized_error": e, "pck": pck_of(e),
                                  "pck_threshold": 0.3})  # fmt: skip
            if plots and it == its[-1]:
                _write_plots(root / "runs" / run_id / "eval" / f"snapshot-{it:07d}", rng)
    status.append({"run_id": "resnet101-scratch-s9-f0.9-paper", "status": "failed",
                   "error": "RuntimeError: CUDA out of memory"})  # fmt: skip
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    pd.DataFrame(parts).to_csv(root / "results_bodyparts.csv", index=False)
    pd.DataFrame(status).to_csv(root / "status.csv", index=False)
    (root / "plan.yaml").write_text("name: fake\nproject: synth\ngrid:\n  preset: paper\n")
    return root


def pck_of(error: float) -> float:
    """A smooth, paper-like PCK for a normalized error (0.1 -> 95 %, 0.5 -> 45 %)."""
    return 1 / (1 + (error / 0.45) ** 2)


def _write_plots(snapshot: Path, rng: np.random.Generator) -> None:
    """Small stand-ins for the evaluator's label/prediction images."""
    (snapshot / "plots").mkdir(parents=True, exist_ok=True)
    (snapshot / "metrics.json").write_text("{}")
    for part in ("train", "within", "ood"):
        for n in range(2):
            image = np.full((81, 144, 3), 90, np.uint8)
            image[20:60, 30:110] = rng.integers(60, 200, 3)
            cv2.circle(image, (50, 40), 4, (0, 200, 0), 1)
            cv2.drawMarker(image, (54, 42), (0, 0, 255), cv2.MARKER_CROSS, 8)
            cv2.imwrite(str(snapshot / "plots" / f"{part}-{n:02d}.png"), image)


_DRAWN: dict[str, tuple[Path, list[Path]]] = {}


def drawn_study(factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """A small study with its figures drawn, made once per session for every test module.

    3 backbones x 2 inits x 2 shuffles x 3 fractions, plus the long ResNet-50 runs. (No
    conftest.py here: it would shadow tests/conftest.py for other modules in this folder.)
    """
    if "small" not in _DRAWN:
        root = make_study(
            factory.mktemp("study"),
            backbones=("mobilenetv2_035", "mobilenetv2_100", "resnet50"),
            fractions=(0.05, 0.5, 0.9),
            shuffles=(1, 2),
            iterations=(10_000, 100_000),
            spread=0.08,
        )
        _DRAWN["small"] = (root, make_figures(root))
    return _DRAWN["small"]
