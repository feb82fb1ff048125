"""Figures: every file written (PNG + SVG), skipped figures leave nothing stale behind."""

from __future__ import annotations

from pathlib import Path

import fake_study
import pandas as pd
import pytest
from fake_study import make_study

from poseshift.study.analysis import StudyTables
from poseshift.study.figures import FIGURES, fig4_gain, make_figures
from poseshift.study.figures_detail import example_frames
from poseshift.study.plotstyle import backbone_color, display_name


@pytest.fixture(scope="module")
def drawn_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    return fake_study.drawn_study(tmp_path_factory)


def test_every_figure_is_written_as_png_and_svg(drawn_study: tuple[Path, list[Path]]) -> None:
    root, written = drawn_study
    assert len(written) == 2 * len(FIGURES)
    for spec in FIGURES:
        png, svg = root / "figures" / f"{spec.stem}.png", root / "figures" / f"{spec.stem}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", spec.stem
        assert png.stat().st_size > 5_000, spec.stem
        assert "<svg" in svg.read_text()[:2000], spec.stem
    assert set(written) == set((root / "figures").iterdir())


def test_example_frames_come_from_the_best_run(drawn_study: tuple[Path, list[Path]]) -> None:
    root, _ = drawn_study
    tables = StudyTables.load(root)
    ood = tables.final[tables.final["partition"] == "ood"]
    best = ood.loc[ood["normalized_error"].idxmin(), "run_id"]
    fig = example_frames(tables)
    assert best in fig.get_suptitle()
    assert len([ax for ax in fig.axes if ax.images]) == 4  # 2 within + 2 ood frames


def test_missing_data_skips_figures_and_removes_stale_ones(tmp_path: Path) -> None:
    root = make_study(
        tmp_path,
        backbones=("mobilenetv2_035", "resnet50", "resnet101"),
        inits=("scratch",),
        fractions=(0.5,),
        shuffles=(1,),
        iterations=(100,),
        plots=False,
        long_runs=False,
    )
    (root / "results_bodyparts.csv").unlink()
    stale = root / "figures" / "fig4_gain.png"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    assert fig4_gain(StudyTables.load(root)) is None  # one init: no gain
    written = {p.name for p in make_figures(root)}
    assert written == {
        "fig2b_error_vs_imagenet.png",
        "fig2b_error_vs_imagenet.svg",
        "fig9_scratch_train_vs_test.png",
        "fig9_scratch_train_vs_test.svg",
    }
    assert not stale.exists()


def test_backbone_names_and_colours_are_stable() -> None:
    assert display_name("mobilenetv2_035") == "MobileNetV2-0.35"
    assert display_name("mobilenetv2_100") == "MobileNetV2-1"
    assert display_name("resnet101") == "ResNet-101"
    assert display_name("efficientnet_b3") == "EfficientNet-B3"
    assert backbone_color("resnet50") == backbone_color("resnet50")
    colours = {backbone_color(b) for b in ("mobilenetv2_035", "mobilenetv2_100", "resnet50")}
    assert len(colours) == 3
    assert pd.notna(backbone_color("my_custom_net")[0])
