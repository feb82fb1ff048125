"""The paper's claims, each checked against this study's numbers with an explicit rule.

Every claim quotes the paper (Mathis et al., "Pretraining boosts out-of-domain robustness
for pose estimation"; section and figure given) and states the rule that decides
"reproduced" / "not reproduced"; a claim whose data the study lacks (one init only, no
ResNet, no 90 % fraction, no long from-scratch runs) is "not measured", with the reason.
Slopes are in percent of the nose-eye distance (normalized error x 100) per ImageNet
top-1 point, the unit of the paper's "-1.6% ... per percentage point" (Section 2.2).
"""

# ruff: noqa: RUF001  (typographic times, minus and dash signs are meant: readers see them)

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from poseshift.study import analysis
from poseshift.study.plotstyle import display_name

ALPHA = 0.05  # significance level for "falls with ImageNet top-1"
PCK_TOLERANCE = 5.0  # PCK points: a level claim is met within +/- this much
FACTOR_TOLERANCE = 1.5  # an "N x" claim is met by a measured factor in [N / 1.5, N x 1.5]
CLOSE_RATIO = 1.2  # "closely matches": within 20 % of the pretrained error

REPRODUCED, NOT_REPRODUCED, NOT_MEASURED = "reproduced", "not reproduced", "not measured"
_PARTS = {"train": "train", "within": "within domain", "ood": "OOD"}


@dataclass(frozen=True)
class ClaimCheck:
    """One row of the report's 'paper vs this study' table."""

    key: str
    source: str  # section / figure of the paper
    claim: str  # the paper's statement and numbers
    rule: str  # how this study's numbers are judged
    measured: str  # this study's numbers, or why they are missing
    verdict: str  # reproduced | not reproduced | not measured


Tables = analysis.StudyTables


def _where(t: Tables) -> str:
    if t.fraction is None:
        return "at no common training fraction"
    note = "" if t.fraction == analysis.PAPER_FRACTION else " (paper: 50 %)"
    return f"at {t.fraction * 100:g} % training data{note}"


def _pck(t: Tables, init: str, family: str, fractions: Callable[[pd.Series], pd.Series]) -> float:
    """Mean within-domain PCK (in %) of one family and init over the chosen fractions."""
    s = t.summary
    rows = s[
        (s["init"] == init)
        & (s["partition"] == "within")
        & s["backbone"].str.startswith(family)
        & fractions(s["fraction"])
    ]
    return float(rows["pck_mean"].mean() * 100) if len(rows) else float("nan")


Outcome = tuple[str, bool | None]  # (measured text, verdict; None = not measured)


def _fit_text(fit: dict, where: str) -> str:
    return (
        f"slope {fit['slope_pct']:+.2f} %/pt, R² {fit['r2']:.2f}, p {fit['p']:.3g} "
        f"(n = {fit['n']} backbones, {where})"
    )


def _falls(init: str, partition: str) -> Callable[[Tables], Outcome]:
    def check(f: Tables) -> Outcome:
        fit = f.fit(init, partition)
        if fit is None:
            return f"no fit: fewer than 3 backbones with {_name(init, partition)} results", None
        return _fit_text(fit, _where(f)), fit["slope"] < 0 and fit["p"] < ALPHA

    return check


def _compare_fits(
    a: tuple[str, str], b: tuple[str, str], what: str, holds: Callable[[dict, dict], bool]
) -> Callable[[Tables], Outcome]:
    def check(f: Tables) -> Outcome:
        fa, fb = f.fit(*a), f.fit(*b)
        if fa is None or fb is None:
            return f"needs fits for {_name(*a)} and {_name(*b)} (3+ backbones each)", None
        label, spec = {"slope_pct": ("slope", "+.2f"), "r2": ("R²", ".2f")}[what]
        unit = " %/pt" if what == "slope_pct" else ""
        text = (
            f"{_name(*a)}: {label} {fa[what]:{spec}}{unit}; "
            f"{_name(*b)}: {label} {fb[what]:{spec}}{unit} ({_where(f)})"
        )
        return text, holds(fa, fb)

    return check


def _name(init: str, partition: str) -> str:
    inits = {"imagenet": "pretrained", "scratch": "from scratch"}
    return f"{inits.get(init, init)} {_PARTS.get(partition, partition)}"


def _pck_level(
    init: str, target: dict[str, float], fractions: Callable[[pd.Series], pd.Series], label: str
) -> Callable[[Tables], Outcome]:
    def check(f: Tables) -> Outcome:
        values = {family: _pck(f, init, family, fractions) for family in target}
        if any(np.isnan(v) for v in values.values()):
            missing = [k for k, v in values.items() if np.isnan(v)]
            return f"no PCK for {', '.join(map(_family, missing))} ({label})", None
        text = "; ".join(f"{_family(k)} {v:.1f} %" for k, v in values.items())
        ok = all(abs(values[k] - target[k]) <= PCK_TOLERANCE for k in target)
        return f"{text} ({label})", ok

    return check


def _family(prefix: str) -> str:
    return {"resnet": "ResNets", "mobilenetv2": "MobileNetV2s"}.get(prefix, prefix)


def _factor(value: float, claimed: float) -> bool:
    return claimed / FACTOR_TOLERANCE <= value <= claimed * FACTOR_TOLERANCE


def _no_gains(f: Tables) -> Outcome | None:
    if f.gains.empty:
        return "needs both ImageNet-pretrained and from-scratch runs of the same backbone", None
    return None


def _worse_within(f: Tables) -> Outcome:
    g = f.gains[f.gains["partition"] == "within"].dropna(subset=["gain"])
    if (missing := _no_gains(f)) or g.empty:
        return missing or ("no within-domain gains", None)
    worse = int((g["gain"] > 1).sum())
    return f"scratch worse in {worse} of {len(g)} backbone × fraction pairs", worse == len(g)


def _gain_factor(
    partition: str, claimed: float, reduce: str, fraction: float | None = None
) -> Callable[[Tables], Outcome]:
    def check(f: Tables) -> Outcome:
        g = f.gains[f.gains["partition"] == partition].dropna(subset=["gain"])
        if fraction is not None:
            g = g[g["fraction"] == fraction]
        if (missing := _no_gains(f)) or g.empty:
            at = "" if fraction is None else f" at {fraction * 100:g} % training data"
            return missing or (f"no {_PARTS[partition]} gains{at}", None)
        value = float(g["gain"].median() if reduce == "median" else g["gain"].max())
        where = "" if fraction is None else f" at {fraction * 100:g} %"
        text = f"{reduce} {_PARTS[partition]} gain{where}: {value:.2f}× over {len(g)} pairs"
        return text, _factor(value, claimed)

    return check


def _pck_gain(f: Tables) -> Outcome:
    g = f.gains[f.gains["partition"].isin(["within", "ood"])].dropna(subset=["pck_ratio"])
    if (missing := _no_gains(f)) or g.empty:
        return missing or ("no PCK from scratch above 0", None)
    best = g.loc[g["pck_ratio"].idxmax()]
    text = (
        f"largest PCK ratio {best['pck_ratio']:.2f}× ({display_name(best['backbone'])}, "
        f"{best['fraction'] * 100:g} %, {_PARTS[best['partition']]})"
    )
    return text, _factor(float(best["pck_ratio"]), 2.0)


def _largest_gain_ood(f: Tables) -> Outcome:
    if missing := _no_gains(f):
        return missing
    top = f.gains.groupby("partition")["gain"].max()
    if not np.isfinite(top.get("ood", np.nan)) or not np.isfinite(top.get("within", np.nan)):
        return "needs within and OOD gains", None
    return f"largest gain: OOD {top['ood']:.2f}×, within {top['within']:.2f}×", bool(
        top["ood"] > top["within"]
    )


def _long_scratch(
    partition: str, fraction: float | None, holds: Callable[[pd.Series], bool]
) -> Callable[[Tables], Outcome]:
    def check(f: Tables) -> Outcome:
        pairs = analysis.best_scratch_vs_final_pretrained(f.results, partition).dropna(
            subset=["ratio"]
        )
        if fraction is not None:
            pairs = pairs[pairs["fraction"] == fraction]
        pairs = pairs[pairs["scratch_iterations"] > pairs["pretrained_iterations"]]
        if pairs.empty:
            at = "" if fraction is None else f" at {fraction * 100:g} %"
            return f"no from-scratch run trained longer than its pretrained twin{at}", None
        text = "; ".join(
            f"{display_name(r.backbone)} {r.fraction * 100:g} %: best scratch / pretrained = "
            f"{r.ratio:.2f} ({r.scratch_iterations:,} vs {r.pretrained_iterations:,} iterations)"
            for r in pairs.itertuples()
        )
        return text, holds(pairs["ratio"])

    return check


@dataclass(frozen=True)
class _Claim:
    key: str
    source: str
    claim: str
    rule: str
    check: Callable[[Tables], Outcome]


_SLOPE_RULE = f"slope < 0 and p < {ALPHA}"
_PCK_RULE = f"every value within ±{PCK_TOLERANCE:g} PCK points of the paper's"
_FACTOR_RULE = f"within a factor {FACTOR_TOLERANCE:g} of the paper's"
_AT_LEAST_20 = "pretrained, within domain, fractions ≥ 20 %"

CLAIMS: tuple[_Claim, ...] = (
    _Claim("within_fit", "§2.1, §2.2, Fig. 2B",
           "Pretrained, within domain (50 % training data): normalized error falls as ImageNet "
           "top-1 rises; linear fit slope −0.33 %/pt, R² = 0.95, p = 0.001.",
           _SLOPE_RULE, _falls("imagenet", "within")),
    _Claim("ood_fit", "§2.2, Fig. 2B",
           "Pretrained, out of domain: slope −1.6 %/pt, R² = 0.95, p = 0.0008.",
           _SLOPE_RULE, _falls("imagenet", "ood")),
    _Claim("ood_steeper", "§2.2, Fig. 2B",
           "The ImageNet relationship is stronger out of domain: slope −1.6 vs −0.33 %/pt.",
           "pretrained OOD slope < pretrained within-domain slope",
           _compare_fits(("imagenet", "ood"), ("imagenet", "within"), "slope_pct",
                         lambda a, b: a["slope"] < b["slope"])),
    _Claim("scratch_within_weak", "§2.3, §3, Figs. 2B, 9B",
           "From scratch, ImageNet top-1 only weakly predicts within-domain error: slope "
           "−0.26 %/pt, R² = 0.53, p = 0.166 (vs R² = 0.95 pretrained).",
           "R² from scratch < R² pretrained (within domain)",
           _compare_fits(("scratch", "within"), ("imagenet", "within"), "r2",
                         lambda a, b: a["r2"] < b["r2"])),
    _Claim("scratch_ood_flat", "§2.3",
           "From scratch, the out-of-domain slope stays shallow: −0.21 %/pt, R² = 0.54, "
           "p = 0.098, unlike −1.6 %/pt pretrained.",
           "|OOD slope from scratch| < |OOD slope pretrained|",
           _compare_fits(("scratch", "ood"), ("imagenet", "ood"), "slope_pct",
                         lambda a, b: abs(a["slope"]) < abs(b["slope"]))),
    _Claim("pck_pretrained", "§2.1, Fig. 8A",
           "Pretrained, within domain, ≥ 20 % training data: PCK nearly 97 % for ResNets, "
           "≈ 93 % for MobileNetV2s.",
           f"mean PCK per family ({_AT_LEAST_20}); {_PCK_RULE}",
           _pck_level("imagenet", {"resnet": 97.0, "mobilenetv2": 93.0},
                      lambda s: s >= 0.2, _AT_LEAST_20)),
    _Claim("pck_5pct", "§2.1, Fig. 8A",
           "Pretrained, within domain, 5 % training data (≈ 160 frames): PCK 80 % "
           "(MobileNetV2s) to 85 % (ResNets).",
           f"mean PCK per family at 5 %; {_PCK_RULE}",
           _pck_level("imagenet", {"mobilenetv2": 80.0, "resnet": 85.0},
                      lambda s: s == 0.05, "pretrained, within domain, 5 %")),
    _Claim("pck_resnet_scratch", "§2.3, Fig. 8",
           "From scratch, ResNet PCK within domain with 20 % training data falls to ≈ 80 % "
           "(from nearly 97 % pretrained).",
           f"mean ResNet PCK from scratch at 20 %; {_PCK_RULE}",
           _pck_level("scratch", {"resnet": 80.0}, lambda s: s == 0.2,
                      "from scratch, within domain, 20 %")),
    _Claim("scratch_worse_within", "§2.3, Figs. 2E, 2F",
           "Every network trained from scratch is worse within domain than pretrained.",
           "gain (scratch / pretrained normalized error) > 1 for every backbone × fraction",
           _worse_within),
    _Claim("scratch_2x_ood", "§2.3, Figs. 2E, 2F",
           "From scratch, networks are ≈ 2× worse out of domain.",
           f"median OOD gain over backbones × fractions {_FACTOR_RULE} (2×)",
           _gain_factor("ood", 2.0, "median")),
    _Claim("pck_gain_2x", "§2.3, Fig. 3A–C",
           "Up to a 2× gain in PCK with transfer learning.",
           f"largest PCK ratio (pretrained / scratch, within or OOD) {_FACTOR_RULE} (2×)",
           _pck_gain),
    _Claim("largest_gain_ood", "§2.3, Fig. 4A, 4B",
           "The largest error reductions from pretraining are out of domain.",
           "largest OOD gain > largest within-domain gain", _largest_gain_ood),
    _Claim("gain_3x_ood_90", "§2.3, §3.1, Fig. 4B",
           "With 90 % training data, pretraining gives up to 3× lower error out of domain.",
           f"largest OOD gain at 90 % {_FACTOR_RULE} (3×)",
           _gain_factor("ood", 3.0, "max", 0.9)),
    _Claim("scratch_never_ood", "§2.4, Fig. 5A, 5B",
           "Training from scratch 6× longer (600k iterations) never reaches the pretrained "
           "network's out-of-domain error (after 100k).",
           "best OOD error from scratch over all snapshots > pretrained final OOD error, for "
           "every backbone × fraction whose scratch run trained longer",
           _long_scratch("ood", None, lambda r: bool((r > 1).all()))),
    _Claim("scratch_small_within", "§2.4, Fig. 5A",
           "With 5 % training data, long training from scratch does not match pretrained "
           "within domain either.",
           "at 5 %: best within error from scratch > pretrained final within error",
           _long_scratch("within", 0.05, lambda r: bool((r > 1).all()))),
    _Claim("scratch_catches_within", "§2.4, Fig. 5B",
           "With 50 % training data, long training from scratch closely matches pretrained "
           "within domain.",
           f"at 50 %: best within error from scratch ≤ {CLOSE_RATIO:g} × pretrained final "
           "(median over backbones)",
           _long_scratch("within", 0.5, lambda r: bool(r.median() <= CLOSE_RATIO))),
)  # fmt: skip


def check_claims(tables: analysis.StudyTables) -> list[ClaimCheck]:
    """Every paper claim next to this study's value and verdict."""
    out = []
    for c in CLAIMS:
        measured, ok = c.check(tables)
        verdict = NOT_MEASURED if ok is None else REPRODUCED if ok else NOT_REPRODUCED
        out.append(ClaimCheck(c.key, c.source, c.claim, c.rule, measured, verdict))
    return out
