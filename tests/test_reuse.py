"""A finished run is reused only for the very spec it was trained with; typos claim nothing.

(Issue #18: analysis outputs and cached metrics are tested next to their modules' tests.)
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from conftest import TINY, spec_for
from poseshift.cli import app
from poseshift.config import to_dict
from poseshift.errors import PoseshiftError
from poseshift.run import RunDir
from poseshift.spec import HASH_NEUTRAL, recipe_dict, run_hash
from poseshift.train.trainer import train

runner = CliRunner()
SHORT = dataclasses.replace(TINY, iterations=2, snapshots=[])


def test_a_finished_run_with_other_settings_is_refused(tiny_project: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    spec = spec_for(tiny_project, train=SHORT)
    assert train(spec, run, show_progress=False).finished
    log = (run / "log.jsonl").read_text()
    changes = {
        "train.iterations: 2 vs 3": {"train": dataclasses.replace(SHORT, iterations=3)},
        "train.seed: 0 vs 1": {"train": dataclasses.replace(SHORT, seed=1)},
        "backbone: 'mobilenetv2_035' vs 'mobilenetv2_050'": {"backbone": "mobilenetv2_050"},
        "preset: 'test' vs 'other'": {"preset": "other"},
    }
    for difference, change in changes.items():
        with pytest.raises(PoseshiftError, match=f"different settings \\({difference}\\)"):
            train(dataclasses.replace(spec, **change), run, show_progress=False)
    assert train(spec, run, show_progress=False).skipped  # the very same spec still is
    assert (run / "log.jsonl").read_text() == log


# Recipe keys added after runs existed (spec.HASH_NEUTRAL), and another value of each.
LATER_KEYS = {
    ("augment", "canvas"): lambda t: dataclasses.replace(
        t, augment=dataclasses.replace(t.augment, crop=None, canvas="per_image")
    ),
    ("backbone_stride",): lambda t: dataclasses.replace(t, backbone_stride=32),
}


@pytest.mark.parametrize("key", list(LATER_KEYS), ids=".".join)
def test_a_run_from_before_a_later_key_keeps_its_name_and_is_reused(
    tiny_project: Path, tmp_path: Path, key: tuple[str, ...]
) -> None:
    """run.yaml written before ``augment.canvas`` (``backbone_stride``) existed: it trained
    on the fixed canvas (at stride 16), so it is the same run as the key at that value (same
    hash, hence scorer and output names) and a different one from the key's other values."""
    assert {("train", *k) for k in LATER_KEYS} == set(HASH_NEUTRAL)  # each one tested here
    run = tmp_path / "run"
    spec = spec_for(tiny_project, train=SHORT)
    assert train(spec, run, show_progress=False).finished
    stored = yaml.safe_load((run / "run.yaml").read_text())
    *parents, name = ("train", *key)
    del functools.reduce(dict.__getitem__, parents, stored)[name]
    (run / "run.yaml").write_text(yaml.safe_dump(stored, sort_keys=False))
    # The hash as poseshift computed it before these keys existed: the recipe without them.
    recipe = recipe_dict(RunDir(run).spec())
    neutral = functools.reduce(dict.__getitem__, parents, recipe)[name]
    for *section, later in (("train", *k) for k in LATER_KEYS):
        del functools.reduce(dict.__getitem__, section, recipe)[later]
    text = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    assert run_hash(RunDir(run).spec()) == hashlib.sha256(text.encode()).hexdigest()[:8]
    assert train(spec, run, show_progress=False).skipped
    other = dataclasses.replace(spec, train=LATER_KEYS[key](SHORT))
    assert run_hash(other) != run_hash(spec)
    changed = functools.reduce(getattr, key, other.train)
    dotted = r"\.".join(("train", *key))
    with pytest.raises(PoseshiftError, match=rf"{dotted}: {neutral!r} vs {changed!r}"):
        train(other, run, show_progress=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"backbone": "resnet9000"}, "unknown backbone 'resnet9000'"),
        ({"init": "imagnet"}, "--init 'imagnet': choose imagenet, scratch or an existing"),
        (
            {"train": dataclasses.replace(SHORT, precision="fp31")},
            "preset test.precision: must be one of",
        ),
        (
            {"train": dataclasses.replace(SHORT, lr_steps={})},
            r"preset test: lr_steps.imagenet must be a list of \[lr, until_iteration\]",
        ),
        ({"log_every": 0}, "preset test: log_every must be at least 1, got 0"),
    ],
)
def test_a_typo_leaves_no_run_directory(
    tiny_project: Path, tmp_path: Path, change: dict, message: str
) -> None:
    run = tmp_path / "run"
    with pytest.raises(PoseshiftError, match=message):
        train(spec_for(tiny_project, **{"train": SHORT, **change}), run, show_progress=False)
    assert not run.exists()


def test_cli_typo_then_the_corrected_command(tiny_project: Path, tmp_path: Path) -> None:
    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump({**to_dict(SHORT), "num_workers": 0, "log_every": 1}))
    run = tmp_path / "run"
    base = ["train", str(tiny_project), "--out", str(run), "--preset", str(preset)]
    base += ["--device", "cpu", "--init", "scratch"]
    for typo in (["--backbone", "resnet9000"], ["--backbone", "mobilenetv2_035", "--init", "x"]):
        result = runner.invoke(app, [*base, *typo])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: ") and result.stderr.strip().count("\n") == 0
        assert not run.exists()
    result = runner.invoke(app, [*base, "--backbone", "mobilenetv2_035"])
    assert result.exit_code == 0, result.output
    assert "finished 2 iterations" in result.output
    again = runner.invoke(app, [*base, "--backbone", "mobilenetv2_035", "--seed", "1"])
    assert again.exit_code == 2 and "already finished" not in again.output
    assert "different settings (train.seed: 0 vs 1); use a new --out" in again.stderr
