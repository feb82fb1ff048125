"""Analyses of the results table: exact fits, gains by hand, NaN partitions, bad tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_study import LEVEL, SLOPE, TOP1, make_study

from poseshift.errors import PoseshiftError
from poseshift.study import analysis
from poseshift.study.claims import NOT_MEASURED, REPRODUCED, check_claims


def exact(tmp_path: Path, **kwargs) -> pd.DataFrame:
    """A table whose final errors are exactly linear in ImageNet top-1 (no noise)."""
    defaults = {"noise": 0.0, "plots": False, "long_runs": False, "iterations": (50, 100)}
    return analysis.load_results(make_study(tmp_path, **(defaults | kwargs)))


def test_regression_recovers_an_exact_linear_relation(tmp_path: Path) -> None:
    df = exact(tmp_path)
    fits = analysis.regressions(df)
    assert set(fits["fraction"]) == {0.5}  # the paper's Figure 2B fraction
    factor = 1 + 0.25 * (0.9 - 0.5)  # fake_study.error_of at 50 %
    for (init, part), slope in SLOPE.items():
        row = fits[
            (fits["init"] == init)
            & (fits["partition"] == part)
            & (fits["metric"] == "normalized_error")
        ].iloc[0]
        assert row["n"] == len(TOP1)
        assert row["slope"] == pytest.approx(slope * factor, rel=1e-9)
        assert row["intercept"] == pytest.approx((LEVEL[init, part] - 60 * slope) * factor)
        assert row["r2"] == pytest.approx(1.0)
        assert row["p"] < 1e-6
        assert row["slope_pct"] == pytest.approx(100 * slope * factor)


def test_fraction_choice_and_too_few_points(tmp_path: Path) -> None:
    df = exact(tmp_path, backbones=("mobilenetv2_035", "resnet50"), fractions=(0.05, 0.2))
    assert analysis.analysis_fraction(df) == 0.2  # no 50 %: the largest common fraction
    extra = df[df["fraction"] == 0.2].assign(fraction=0.9)
    lopsided = pd.concat([df, extra[extra["backbone"] == "resnet50"]])
    assert analysis.analysis_fraction(lopsided) == 0.2  # 90 % is not common to all
    fits = analysis.regressions(df)
    assert (fits["n"] == 2).all()
    assert all(v is None for c in ("slope", "intercept", "r2", "p") for v in fits[c])
    assert analysis.fit_line(np.array([1.0, 2.0, 3.0]), np.array([5.0, 5.0, 5.0])) is None


def test_summary_means_over_shuffles_of_final_main_grid_runs(tmp_path: Path) -> None:
    df = analysis.load_results(make_study(tmp_path, plots=False, iterations=(1000, 2000)))
    summary = analysis.summary_table(df)
    row = summary[
        (summary["backbone"] == "resnet50")
        & (summary["init"] == "scratch")
        & (summary["fraction"] == 0.05)
        & (summary["partition"] == "ood")
    ].iloc[0]
    # ResNet-50 shuffle 1 at 5 % also has a longer run (paper-long): the summary keeps the grid's.
    raw = df[
        df["run_id"].str.endswith("-paper")
        & (df["backbone"] == "resnet50")
        & (df["init"] == "scratch")
        & (df["fraction"] == 0.05)
        & (df["partition"] == "ood")
        & (df["iteration"] == 2000)
    ]["normalized_error"]
    assert row["n_shuffles"] == 3 and row["iteration"] == 2000
    assert row["normalized_error_mean"] == pytest.approx(raw.mean())
    assert row["normalized_error_std"] == pytest.approx(raw.std(ddof=1))
    curves = analysis.learning_curves(df)
    long = curves[(curves["backbone"] == "resnet50") & (curves["fraction"] == 0.05)]
    assert long["iteration"].max() == 600_000  # learning curves follow the longest run


def test_gain_by_hand(tmp_path: Path) -> None:
    df = analysis.load_results(make_study(tmp_path, plots=False, long_runs=False))
    gains = analysis.gains(df)
    assert len(gains) == len(TOP1) * 5 * 3
    final = df[df["iteration"] == 100_000]
    pick = final[
        (final["backbone"] == "mobilenetv2_050")
        & (final["fraction"] == 0.1)
        & (final["partition"] == "within")
    ]
    pretrained = pick[pick["init"] == "imagenet"]
    scratch = pick[pick["init"] == "scratch"]
    row = gains[
        (gains["backbone"] == "mobilenetv2_050")
        & (gains["fraction"] == 0.1)
        & (gains["partition"] == "within")
    ].iloc[0]
    expected = scratch["normalized_error"].mean() / pretrained["normalized_error"].mean()
    assert row["gain"] == pytest.approx(expected)
    assert row["pck_diff"] == pytest.approx(pretrained["pck"].mean() - scratch["pck"].mean())
    assert row["pck_ratio"] == pytest.approx(pretrained["pck"].mean() / scratch["pck"].mean())


def test_one_init_gives_empty_gains(tmp_path: Path) -> None:
    df = exact(tmp_path, inits=("scratch",))
    gains = analysis.gains(df)
    assert gains.empty and list(gains.columns) == analysis.GAIN_COLUMNS


def test_nan_partitions_do_not_crash(tmp_path: Path) -> None:
    path = make_study(tmp_path, noise=0.0, plots=False, long_runs=False, iterations=(100,))
    table = pd.read_csv(path / "results.csv")
    ood = table["partition"] == "ood"
    table.loc[ood, ["error_px", "normalized_error", "pck"]] = np.nan  # no labeled keypoint
    one = (table["backbone"] == "resnet50") & (table["partition"] == "within")
    table.loc[one, "normalized_error"] = np.nan
    table.to_csv(path / "results.csv", index=False)
    df = analysis.load_results(path)
    summary = analysis.summary_table(df)
    assert summary[summary["partition"] == "ood"]["normalized_error_mean"].isna().all()
    fits = analysis.regressions(df).set_index(["init", "partition", "metric"])
    assert fits.loc[("imagenet", "ood", "normalized_error"), "slope"] is None
    assert fits.loc[("imagenet", "within", "normalized_error"), "n"] == len(TOP1) - 1
    assert fits.loc[("imagenet", "within", "normalized_error"), "r2"] == pytest.approx(1.0)
    assert analysis.gains(df).query("partition == 'ood'")["gain"].isna().all()
    verdicts = {c.key: c.verdict for c in check_claims(analysis.StudyTables(path, df, None))}
    assert verdicts["ood_fit"] == NOT_MEASURED and verdicts["within_fit"] == REPRODUCED


def test_claims_follow_their_rules(tmp_path: Path) -> None:
    path = make_study(tmp_path, plots=False, spread=0.08)
    checks = {c.key: c for c in check_claims(analysis.StudyTables.load(path))}
    assert checks["within_fit"].verdict == REPRODUCED  # falls with top-1, p < 0.05
    assert checks["ood_steeper"].verdict == REPRODUCED  # -1.6 vs -0.33 %/pt built in
    assert checks["scratch_never_ood"].verdict == REPRODUCED
    assert "ResNet-50" in checks["scratch_never_ood"].measured
    assert all(c.source and c.rule and c.measured for c in checks.values())
    only_scratch = analysis.StudyTables.load(make_study(tmp_path / "s", inits=("scratch",)))
    checks = {c.key: c for c in check_claims(only_scratch)}
    for key in ("within_fit", "ood_fit", "gain_3x_ood_90", "pck_gain_2x", "scratch_never_ood"):
        assert checks[key].verdict == NOT_MEASURED, key


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "results.csv not found"),
        ("", "is empty"),
        ("run_id,backbone\nx,resnet50\n", "lacks column(s) init"),
        ("HEADER", "has no rows"),
        ("BAD", "line 2: column 'fraction' needs a float value, got 'half'"),
    ],
)
def test_bad_tables_are_one_line_errors(tmp_path: Path, content: str | None, message: str) -> None:
    header = ",".join(analysis.RESULT_COLUMNS)
    row = "r,resnet50,imagenet,76.1,1,half,100,ood,4,1.0,0.1,0.9,0.3,runs/r"
    text = {"HEADER": header + "\n", "BAD": f"{header}\n{row}\n"}.get(content, content)
    if text is not None:
        (tmp_path / "results.csv").write_text(text)
    with pytest.raises(PoseshiftError, match=message.replace("(", r"\(").replace(")", r"\)")):
        analysis.load_results(tmp_path)


def test_long_runs_are_compared_on_their_own_shuffles(tmp_path: Path) -> None:
    """The 600k runs exist for shuffle 1 only: its curve, and Figure 5's "best scratch vs
    final pretrained", stay on shuffle 1 instead of mixing 3 shuffles up to 100k with 1."""
    df = analysis.load_results(make_study(tmp_path, plots=False, iterations=(1000, 2000)))
    curves = analysis.learning_curves(df)
    long = curves[(curves["backbone"] == "resnet50") & (curves["fraction"] == 0.05)]
    assert set(long["n_shuffles"]) == {1}
    assert sorted(set(long["iteration"])) == [1000, 2000, 300_000, 600_000]
    short = curves[(curves["backbone"] == "mobilenetv2_035") & (curves["fraction"] == 0.05)]
    assert set(short["n_shuffles"]) == {3}
    pairs = analysis.best_scratch_vs_final_pretrained(df, "ood").set_index(["backbone", "fraction"])
    shuffle_1 = df[
        (df["backbone"] == "resnet50")
        & (df["fraction"] == 0.05)
        & (df["partition"] == "ood")
        & (df["shuffle"] == 1)
        & df["run_id"].str.endswith("-paper")
        & (df["iteration"] == 2000)
        & (df["init"] == "imagenet")
    ]
    row = pairs.loc[("resnet50", 0.05)]
    assert row["pretrained_final"] == pytest.approx(shuffle_1["normalized_error"].iloc[0])


def test_a_missing_main_run_is_stood_in_for_by_the_long_runs_snapshot(tmp_path: Path) -> None:
    df = analysis.load_results(make_study(tmp_path, plots=False, iterations=(1000, 2000)))
    main = df["run_id"].str.endswith("-paper") & (df["backbone"] == "resnet50")
    key = main & (df["init"] == "scratch") & (df["shuffle"] == 1) & (df["fraction"] == 0.05)
    final = analysis.final_results(df[~key])
    stand_in = final[
        (final["backbone"] == "resnet50")
        & (final["init"] == "scratch")
        & (final["shuffle"] == 1)
        & (final["fraction"] == 0.05)
    ]
    assert set(stand_in["iteration"]) == {2000}  # the long run at the grid's length, not 600k
    assert stand_in["run_id"].str.endswith("-paper-long").all()
