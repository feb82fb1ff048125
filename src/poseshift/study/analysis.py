"""The paper's analyses, computed from the study's results table alone.

Everything here reads ``DIR/results.csv`` (one row per run x partition x snapshot, written
by the runner), so figures and the report can be redrawn without retraining. "Final"
results are each run's largest iteration. Means are taken over shuffles (the paper's
"averages of 3 splits"); fits against ImageNet top-1 use one point per backbone (its mean
over shuffles), which is how the paper's p-values come out (n = 6 networks, Figure 2B).

A plan may train the same backbone x init x shuffle x fraction twice, e.g. the paper's
600k-iteration ResNet-50 runs next to the 100k grid (Figure 5). Final-value analyses use
the main grid's run (the one whose length is the study's usual run length); learning
curves use the longest run.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from poseshift.errors import PoseshiftError

PARTITIONS = ("train", "within", "ood")
INITS = ("imagenet", "scratch")
METRICS = ("error_px", "normalized_error", "pck")
# The training fraction of the paper's Figures 2B, 4A and 9B ("for 50% training set fraction").
PAPER_FRACTION = 0.5
MIN_FIT_POINTS = 3

RESULT_COLUMNS = {
    "run_id": "str",
    "backbone": "str",
    "init": "str",
    "imagenet_top1": "float",
    "shuffle": "int",
    "fraction": "float",
    "iteration": "int",
    "partition": "str",
    "n_images": "int",
    "error_px": "float",
    "normalized_error": "float",
    "pck": "float",
    "pck_threshold": "float",
    "run_dir": "str",
}
BODYPART_COLUMNS = {
    **{k: RESULT_COLUMNS[k] for k in ("run_id", "backbone", "init", "imagenet_top1")},
    **{k: RESULT_COLUMNS[k] for k in ("shuffle", "fraction", "iteration", "partition")},
    "bodypart": "str",
    "error_px": "float",
    "normalized_error": "float",
    "pck": "float",
}
OPTIONAL_VALUES = {"error_px", "normalized_error", "pck", "pck_threshold", "run_dir"}
RUN_KEY = ["backbone", "init", "shuffle", "fraction"]
GROUP = ["backbone", "init", "imagenet_top1", "fraction", "partition"]


def _read_table(path: Path, columns: dict[str, str]) -> pd.DataFrame:
    """Read and type-check one table; every problem is a one-line error naming file and column."""
    if not path.is_file():
        raise PoseshiftError(f"{path} not found; run the study first ('poseshift study run')")
    text_columns = {c: str for c, kind in columns.items() if kind == "str"}
    try:
        df = pd.read_csv(path, dtype=text_columns, keep_default_na=True)
    except pd.errors.EmptyDataError:
        raise PoseshiftError(f"{path} is empty; re-run the study to write its results") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise PoseshiftError(
            f"{path} lacks column(s) {', '.join(missing)}; it was not written by this "
            "version of the runner, re-run the study"
        )
    if df.empty:
        raise PoseshiftError(
            f"{path} has no rows: no run has finished evaluation yet (see status.csv beside it)"
        )
    for column, kind in columns.items():
        values = df[column] if kind == "str" else pd.to_numeric(df[column], errors="coerce")
        bad = values.isna() & df[column].notna()  # text in a number column
        if column not in OPTIONAL_VALUES:
            bad |= values.isna()  # an empty cell where a value is required
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise PoseshiftError(
                f"{path} line {row + 2}: column {column!r} needs a {kind} value, got "
                f"{df[column].iloc[row]!r}; fix or delete that row"
            )
        if kind != "str":
            df[column] = values.astype(int) if kind == "int" else values.astype(float)
    df["fraction"] = df["fraction"].round(6)
    return df


def load_results(study_dir: str | Path) -> pd.DataFrame:
    """The typed results table of a study (``DIR/results.csv``)."""
    return _read_table(Path(study_dir) / "results.csv", RESULT_COLUMNS)


def load_bodyparts(study_dir: str | Path) -> pd.DataFrame | None:
    """The per-bodypart table (``DIR/results_bodyparts.csv``), or None when it was not written."""
    path = Path(study_dir) / "results_bodyparts.csv"
    return _read_table(path, BODYPART_COLUMNS) if path.is_file() else None


def one_run_per_key(df: pd.DataFrame, longest: bool = False) -> pd.DataFrame:
    """Keep one run per backbone x init x shuffle x fraction.

    ``longest``: the run with the most iterations (for learning curves); otherwise the run
    whose length is closest to the most common run length (the main grid).
    """
    runs = df.groupby("run_id").agg(**{k: (k, "first") for k in RUN_KEY}, last=("iteration", "max"))
    if longest:
        keep = runs.sort_values("last").groupby(RUN_KEY).tail(1)
    else:
        usual = runs["last"].mode().max()
        runs["distance"] = (runs["last"] - usual).abs()
        keep = runs.sort_values(["distance", "last"]).groupby(RUN_KEY).head(1)
    return df[df["run_id"].isin(keep.index)].reset_index(drop=True)


def final_results(df: pd.DataFrame) -> pd.DataFrame:
    """Per-shuffle values at each main-grid run's largest iteration (the 'final' numbers).

    Where a key's only run is longer than the main grid's (its main run failed or is still
    to come), its snapshot at the main-grid length stands in (the long runs share the
    schedule up to there), or the key is left out: never a 600k number among 100k ones.
    """
    usual = df.groupby("run_id")["iteration"].max().mode().max() if len(df) else 0
    df = one_run_per_key(df)
    last = df.groupby("run_id")["iteration"].transform("max")
    wanted = last.where(last <= usual, usual)
    return df[df["iteration"] == wanted].reset_index(drop=True)


def _mean_std(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean and sample std of each metric over shuffles; NaN cells are skipped, not zeroed."""
    grouped = df.groupby(by, dropna=False, sort=True)
    out = grouped.agg(
        n_shuffles=("shuffle", "nunique"),
        n_images=("n_images", "mean"),
        **{f"{m}_mean": (m, "mean") for m in METRICS},
        **{f"{m}_std": (m, "std") for m in METRICS},
    )
    return out.reset_index()


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean +/- std over shuffles per backbone x init x fraction x partition, final iteration."""
    final = final_results(df)
    out = _mean_std(final, GROUP)
    iterations = final.groupby(GROUP, dropna=False)["iteration"].max().reset_index()
    out = out.merge(iterations, on=GROUP)
    order = {p: i for i, p in enumerate(PARTITIONS)}
    out["_p"] = out["partition"].map(order).fillna(len(order))
    return out.sort_values(["imagenet_top1", "backbone", "init", "fraction", "_p"]).drop(
        columns="_p"
    )


def curve_points(df: pd.DataFrame) -> pd.DataFrame:
    """Per-shuffle snapshots of each backbone x init x fraction's longest runs, over one set
    of shuffles: those whose run is the longest, at the iterations they all have.

    (The paper's plans train the 600k runs on shuffle 1 only: a mean over "whichever
    shuffles have this iteration" would jump from 3 shuffles to 1 at 100k.)
    """
    df = one_run_per_key(df, longest=True)
    kept = []
    for _, group in df.groupby(["backbone", "init", "fraction"], sort=False):
        last = group.groupby("shuffle")["iteration"].max()
        shuffles = last.index[last == last.max()]
        group = group[group["shuffle"].isin(shuffles)]
        have = group.groupby("iteration")["shuffle"].nunique()
        kept.append(group[group["iteration"].isin(have.index[have == len(shuffles)])])
    return pd.concat(kept, ignore_index=True) if kept else df


def learning_curves(df: pd.DataFrame) -> pd.DataFrame:
    """Mean +/- std over shuffles per backbone x init x fraction x partition x iteration
    (the same shuffles at every iteration: ``curve_points``)."""
    return _mean_std(curve_points(df), [*GROUP, "iteration"])


def analysis_fraction(df: pd.DataFrame) -> float | None:
    """The paper's 50 % fraction when every backbone x init has it, else the largest such one.

    Falls back to the largest fraction present when no fraction is shared by all groups.
    """
    if df.empty:
        return None
    sets = [set(g["fraction"]) for _, g in df.groupby(["backbone", "init"])]
    common = set.intersection(*sets)
    if PAPER_FRACTION in common:
        return PAPER_FRACTION
    return float(max(common)) if common else float(df["fraction"].max())


def fit_line(x: np.ndarray, y: np.ndarray) -> dict[str, float | int] | None:
    """Least-squares line through the finite (x, y) pairs.

    None when it is undefined: fewer than 3 points, or x or y constant (R² and p are 0/0).
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < MIN_FIT_POINTS or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    fit = stats.linregress(x, y)
    return {
        "n": len(x),
        "slope": float(fit.slope),
        "intercept": float(fit.intercept),
        "r2": float(fit.rvalue**2),
        "p": float(fit.pvalue),
    }


FIT_COLUMNS = ["slope", "intercept", "r2", "p"]


def regressions(df: pd.DataFrame, fraction: float | None = None) -> pd.DataFrame:
    """Linear fits of normalized error and PCK on ImageNet top-1, per partition and init.

    One point per backbone (its final value averaged over shuffles) at one training
    fraction, by default the paper's 50 % (Figure 2B) or ``analysis_fraction``.
    ``slope_pct`` is 100 x slope: the paper quotes slopes in percent of the nose-eye
    distance (normalized error x 100) per ImageNet point, e.g. "-1.6% ... per percentage
    point of ImageNet performance" (Section 2.2). Fits with fewer than 3 backbones hold None.
    """
    fraction = analysis_fraction(df) if fraction is None else round(float(fraction), 6)
    columns = ["init", "partition", "metric", "fraction", "n", *FIT_COLUMNS, "slope_pct"]
    if fraction is None:
        return pd.DataFrame(columns=columns)
    summary = summary_table(df)
    summary = summary[summary["fraction"] == fraction]
    rows = []
    for (init, partition), group in summary.groupby(["init", "partition"], sort=False):
        for metric in ("normalized_error", "pck"):
            fit = fit_line(group["imagenet_top1"], group[f"{metric}_mean"])
            n = int(np.isfinite(group[f"{metric}_mean"].to_numpy(float)).sum())
            values = fit or dict.fromkeys(FIT_COLUMNS)
            slope_pct = None if fit is None else 100.0 * fit["slope"]
            rows.append(
                {"init": init, "partition": partition, "metric": metric, "fraction": fraction}
                | values
                | {"n": n, "slope_pct": slope_pct}
            )
    out = pd.DataFrame(rows, columns=columns)
    fits = [*FIT_COLUMNS, "slope_pct"]
    out[fits] = out[fits].astype(object).where(out[fits].notna(), None)
    return out


GAIN_COLUMNS = [
    "backbone",
    "imagenet_top1",
    "fraction",
    "partition",
    "error_imagenet",
    "error_scratch",
    "gain",
    "pck_imagenet",
    "pck_scratch",
    "pck_diff",
    "pck_ratio",
]


def gains(df: pd.DataFrame) -> pd.DataFrame:
    """Transfer-learning gain per backbone x fraction x partition (final, shuffle means).

    ``gain`` = scratch normalized error / pretrained normalized error (Figure 4: "up to 3X");
    ``pck_diff`` = pretrained - scratch PCK and ``pck_ratio`` = pretrained / scratch PCK
    (Figure 3C). Empty when the study did not train both inits.
    """
    summary = summary_table(df)
    keys = ["backbone", "imagenet_top1", "fraction", "partition"]
    cols = {"normalized_error_mean": "error", "pck_mean": "pck"}
    halves = [
        summary[summary["init"] == init][[*keys, *cols]].rename(
            columns={k: f"{v}_{init}" for k, v in cols.items()}
        )
        for init in INITS
    ]
    both = halves[0].merge(halves[1], on=keys, how="inner")
    if both.empty:
        return pd.DataFrame(columns=GAIN_COLUMNS)
    pretrained = both["error_imagenet"].where(both["error_imagenet"] > 0)
    both["gain"] = both["error_scratch"] / pretrained
    both["pck_diff"] = both["pck_imagenet"] - both["pck_scratch"]
    both["pck_ratio"] = both["pck_imagenet"] / both["pck_scratch"].where(both["pck_scratch"] > 0)
    return both[GAIN_COLUMNS].reset_index(drop=True)


def best_scratch_vs_final_pretrained(df: pd.DataFrame, partition: str) -> pd.DataFrame:
    """Scratch's best error over all snapshots vs pretrained's final error (Figure 5).

    Per backbone x fraction (shuffle means): can training from scratch for longer (its
    longest runs, every snapshot) ever catch up with the main grid's pretrained network?
    ``ratio`` > 1 means it never does.
    """
    keys = ["backbone", "imagenet_top1", "fraction"]
    points = curve_points(df)
    points = points[(points["partition"] == partition) & (points["init"] == "scratch")]
    curves = _mean_std(points, [*GROUP, "iteration"])
    best = curves.groupby(keys)["normalized_error_mean"].min().rename("scratch_best")
    last_it = curves.groupby(keys)["iteration"].max().rename("scratch_iterations")
    # pretrained on the very shuffles the scratch curve averages (paired splits)
    final = final_results(df)
    final = final[(final["partition"] == partition) & (final["init"] == "imagenet")]
    scratch_shuffles = points.groupby(["backbone", "fraction"])["shuffle"].unique()
    paired = [
        row.shuffle in scratch_shuffles.get((row.backbone, row.fraction), ())
        for row in final.itertuples()
    ]
    final = final[pd.Series(paired, index=final.index, dtype=bool)]
    final = final.groupby(keys).agg(
        pretrained_final=("normalized_error", "mean"), pretrained_iterations=("iteration", "max")
    )
    out = pd.concat([best, last_it], axis=1).join(final, how="inner").reset_index()
    out["ratio"] = out["scratch_best"] / out["pretrained_final"].where(out["pretrained_final"] > 0)
    return out


@dataclass
class StudyTables:
    """A study's tables, read once and derived lazily, for the figures and the report."""

    study_dir: Path
    results: pd.DataFrame
    bodyparts: pd.DataFrame | None

    @classmethod
    def load(cls, study_dir: str | Path) -> StudyTables:
        study_dir = Path(study_dir)
        return cls(study_dir, load_results(study_dir), load_bodyparts(study_dir))

    @functools.cached_property
    def final(self) -> pd.DataFrame:
        return final_results(self.results)

    @functools.cached_property
    def summary(self) -> pd.DataFrame:
        return summary_table(self.results)

    @functools.cached_property
    def fraction(self) -> float | None:
        return analysis_fraction(self.results)

    @functools.cached_property
    def fits(self) -> pd.DataFrame:
        return regressions(self.results, self.fraction)

    @functools.cached_property
    def gains(self) -> pd.DataFrame:
        return gains(self.results)

    @functools.cached_property
    def curves(self) -> pd.DataFrame:
        return learning_curves(self.results)

    def fit(self, init: str, partition: str, metric: str = "normalized_error") -> dict | None:
        """The regression row for init x partition x metric, or None when it has no fit."""
        f = self.fits
        rows = f[(f["init"] == init) & (f["partition"] == partition) & (f["metric"] == metric)]
        if rows.empty or rows.iloc[0]["slope"] is None:
            return None
        return rows.iloc[0].to_dict()
