"""Horse-C evaluation of a tiny trained run: report schema, means, resume, wrong copies."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import TINY, make_project, spec_for
from poseshift.cli import app
from poseshift.data.project import load_project
from poseshift.data.splits import group_split, save_split
from poseshift.datasets.horse_c.build import make_corruptions
from poseshift.errors import PoseshiftError
from poseshift.evaluate import horse_c
from poseshift.evaluate.evaluate import evaluate_run
from poseshift.evaluate.horse_c import evaluate_corruptions
from poseshift.models import posenet
from poseshift.run import RunDir
from poseshift.train.trainer import train

SPLIT = "horse10-g2-s0"
CELLS = {"contrast": [1, 5], "pixelate": [1, 5]}


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("horse-c")
    make_project(root / "proj", groups=3, frames=4)
    save_split(root / "proj", group_split(load_project(root / "proj"), 2, 1, [0.5]))
    recipe = dataclasses.replace(TINY, iterations=2, snapshots=[2])
    spec = spec_for(root / "proj", split=SPLIT, fraction=0.5, train=recipe)
    train(spec, root / "run", show_progress=False)
    make_corruptions(
        root / "proj", SPLIT, root / "horse-c", corruptions=list(CELLS), severities=[1, 5]
    )
    return root / "run", root / "horse-c"


def test_report_schema_and_means(setup: tuple[Path, Path]) -> None:
    run, folder = setup
    [report] = evaluate_corruptions(run, folder, scale_pair=["Nose", "Eye"])
    path = run / "eval" / "snapshot-0000002" / "corruptions.json"
    assert json.loads(path.read_text()) == report
    assert report["complete"] and report["snapshot"] == 2
    assert {c: sorted(int(s) for s in v) for c, v in report["results"].items()} == CELLS
    for part in ("within", "ood"):
        cells = [report["results"][c][str(s)][part] for c, levels in CELLS.items() for s in levels]
        assert all(cell["n_images"] == 4 for cell in cells)
        expected = np.mean([cell["normalized_error"] for cell in cells])
        assert report["mean"][part]["normalized_error"] == pytest.approx(expected)
        pixelate = [report["results"]["pixelate"][s][part]["pck"] for s in ("1", "5")]
        assert report["per_corruption"]["pixelate"][part]["pck"] == pytest.approx(np.mean(pixelate))
    [clean] = evaluate_run(run, scale_pair=["Nose", "Eye"])
    for part in ("within", "ood"):
        for key in ("error_px", "normalized_error", "pck"):
            assert report["clean"][part][key] == pytest.approx(clean["partitions"][part][key])


def test_finished_report_is_reused(setup: tuple[Path, Path], monkeypatch) -> None:
    run, folder = setup
    first = evaluate_corruptions(run, folder, scale_pair=["Nose", "Eye"])

    def no_model(*args):
        raise AssertionError("the finished report should be reused")

    monkeypatch.setattr("poseshift.predict.predictor.read_snapshot", no_model)
    assert evaluate_corruptions(run, folder, scale_pair=["Nose", "Eye"]) == first
    assert horse_c.summarize_corruptions(first[0]["results"], ["ood"])[0] == {
        "ood": first[0]["mean"]["ood"]
    }


def test_a_report_is_recomputed_for_another_snapshot_or_scale(
    setup: tuple[Path, Path], monkeypatch
) -> None:
    run, folder = setup
    [first] = evaluate_corruptions(run, folder, scale_pair=["Nose", "Eye"])
    loads, real = [], posenet.read_snapshot

    def counting(path, **kwargs):
        loads.append(path)
        return real(path, **kwargs)

    monkeypatch.setattr("poseshift.predict.predictor.read_snapshot", counting)
    os.utime(RunDir(run).snapshot_path(2))  # the snapshot was written again (e.g. retrained)
    evaluate_corruptions(run, folder, scale_pair=["Nose", "Eye"])
    [tail] = evaluate_corruptions(run, folder, scale_pair=["Nose", "Tail"])
    assert len(loads) == 2
    assert tail["source"]["scale_pair"] == ["Nose", "Tail"]
    assert tail["mean"]["ood"]["normalized_error"] != first["mean"]["ood"]["normalized_error"]


def test_copies_of_another_split_are_refused(setup: tuple[Path, Path], tmp_path: Path) -> None:
    run, folder = setup
    project = Path(json.loads((folder / "manifest.json").read_text())["source_project"])
    make_corruptions(
        project, SPLIT, tmp_path, partitions=["ood"], corruptions=["fog"], severities=[1]
    )
    with pytest.raises(PoseshiftError, match=r"lacks 4 within image\(s\) of run .*shuffle"):
        evaluate_corruptions(run, tmp_path)
    with pytest.raises(PoseshiftError, match=r"no manifest\.json"):
        evaluate_corruptions(run, tmp_path / "nothing")


def test_cli_prints_the_horse_c_table(setup: tuple[Path, Path]) -> None:
    run, folder = setup
    args = ["evaluate", str(run), "--scale-pair", "Nose,Eye", "--corruptions", str(folder)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for word in ("Horse-C, snapshot 2", "clean", "contrast", "pixelate", "mean"):
        assert word in result.output
