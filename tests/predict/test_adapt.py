"""``poseshift adapt``: AdaBN on target frames, written as a run every command can use."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from tiny_video import read_frames, tiny_run, write_video
from typer.testing import CliRunner

from poseshift.cli import app
from poseshift.errors import PoseshiftError
from poseshift.evaluate.evaluate import evaluate_run
from poseshift.models.posenet import PoseNet, read_snapshot
from poseshift.predict.adapt import adapt_batchnorm, adapt_run, batchnorm_layers
from poseshift.predict.export import export_run
from poseshift.predict.target_frames import sha256_file
from poseshift.predict.video import analyze_videos
from poseshift.run import RunDir


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def cli_refuses(args: list, names: Path | str) -> None:
    """Exit 2 with a single ``error:`` line naming ``names`` (as tests/bad_inputs check)."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(names) in lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("target") / "newmouse.mp4", frames=10)


@pytest.fixture(scope="module")
def adapted(run: Path, clip: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("adapted") / "run-adapted"
    adapt_run(run, clip, out, batch_size=32)
    return out


def test_batchnorm_statistics_become_the_target_frames(run: Path, clip: Path) -> None:
    """The first BatchNorm layer's running mean and variance are its inputs' on the frames."""
    snapshot = read_snapshot(RunDir(run).snapshot_path(6))
    model, frames = snapshot.model, read_frames(clip)
    first = batchnorm_layers(model)[0]
    seen: list[torch.Tensor] = []
    hook = first.register_forward_hook(lambda module, args, out: seen.append(args[0].detach()))
    count = adapt_batchnorm(model, frames, input_scale=snapshot.input_scale, batch_size=32)
    hook.remove()
    [inputs] = seen  # one batch: all ten frames
    assert count == len(frames) == 10
    expected_mean = inputs.mean(dim=(0, 2, 3))
    expected_var = inputs.var(dim=(0, 2, 3), unbiased=True)
    torch.testing.assert_close(first.running_mean, expected_mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(first.running_var, expected_var, rtol=1e-4, atol=1e-5)
    assert not first.training


def test_prior_keeps_a_share_of_the_stored_statistics(run: Path, clip: Path) -> None:
    frames = read_frames(clip)
    stored = read_snapshot(RunDir(run).snapshot_path(6))
    before = batchnorm_layers(stored.model)[0].running_mean.clone()
    plain = read_snapshot(RunDir(run).snapshot_path(6)).model
    adapt_batchnorm(plain, frames, input_scale=stored.input_scale, batch_size=32)
    adapt_batchnorm(stored.model, frames, input_scale=stored.input_scale, batch_size=32, prior=30)
    target = batchnorm_layers(plain)[0].running_mean
    blended = batchnorm_layers(stored.model)[0].running_mean
    torch.testing.assert_close(blended, 0.75 * before + 0.25 * target, rtol=1e-4, atol=1e-5)


def test_a_leftover_batch_counts_by_its_frames(run: Path) -> None:
    """16 dark frames and a bright one: every layer's statistics are those of all the inputs it
    saw, each frame counted once however the frames are batched; the first layer's inputs do
    not depend on the batching, so its statistics are the same for every batch size. (Deeper
    layers' inputs do: each batch is normalized by its own statistics on the way.)"""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 40, (48, 64, 3), np.uint8) for _ in range(16)]
    frames.append(np.full((48, 64, 3), 230, np.uint8))
    first = {}
    for batch_size in (17, 16, 8):
        snapshot = read_snapshot(RunDir(run).snapshot_path(6))
        layers = batchnorm_layers(snapshot.model)
        seen: list[list[torch.Tensor]] = [[] for _ in layers]
        hooks = [
            layer.register_forward_pre_hook(lambda _, args, to=inputs: to.append(args[0].clone()))
            for layer, inputs in zip(layers, seen, strict=True)
        ]
        adapt_batchnorm(
            snapshot.model, frames, input_scale=snapshot.input_scale, batch_size=batch_size
        )
        for hook in hooks:
            hook.remove()
        for layer, inputs in zip(layers, seen, strict=True):
            values = torch.cat([x.transpose(0, 1).flatten(1) for x in inputs], dim=1)
            torch.testing.assert_close(layer.running_mean, values.mean(1), rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(layer.running_var, values.var(1), rtol=1e-4, atol=1e-5)
        first[batch_size] = (layers[0].running_mean, layers[0].running_var)
    for mean, var in first.values():
        torch.testing.assert_close(mean, first[17][0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(var, first[17][1], rtol=1e-5, atol=1e-6)


def test_frames_are_padded_to_the_stride_as_at_inference(run: Path) -> None:
    """AdaBN sees what prediction sees: 50x37 frames padded black to 64x48 (a TF-padded
    network's feature grid depends on it), so frames padded beforehand adapt identically."""
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (37, 50, 3), np.uint8) for _ in range(6)]
    padded = [np.pad(f, ((0, 11), (0, 14), (0, 0))) for f in frames]
    statistics = []
    for batch in (frames, padded):
        model = read_snapshot(RunDir(run).snapshot_path(6)).model
        adapt_batchnorm(model, batch, input_scale=1.0, batch_size=6)
        statistics.append([(b.running_mean, b.running_var) for b in batchnorm_layers(model)])
    for (mean, var), (padded_mean, padded_var) in zip(*statistics, strict=True):
        torch.testing.assert_close(mean, padded_mean)
        torch.testing.assert_close(var, padded_var)


def test_frames_failing_part_way_leave_the_network_as_it_was(run: Path, clip: Path) -> None:
    model = read_snapshot(RunDir(run).snapshot_path(6)).model
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def frames():
        yield from read_frames(clip)[:4]  # two batches of two run...
        raise PoseshiftError("the video is damaged")  # ... then decoding fails

    with pytest.raises(PoseshiftError, match="damaged"):
        adapt_batchnorm(model, frames(), batch_size=2)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m.training for m in model.modules())


def test_adapted_run_records_its_source_and_changes_only_statistics(
    run: Path, clip: Path, adapted: Path
) -> None:
    record = RunDir(adapted).adaptation()
    assert record is not None
    assert record["source_run"] == str(run.resolve())
    assert record["snapshot"]["sha256"] == sha256_file(RunDir(run).snapshot_path(6))
    assert record["frames"]["video"]["sha256"] == sha256_file(clip)
    assert record["frames"]["frames"] == 10 and record["result"]["frames_decoded"] == 10
    assert RunDir(adapted).spec() == RunDir(run).spec()
    assert RunDir(adapted).bodyparts() == RunDir(run).bodyparts()
    assert RunDir(adapted).snapshots() == [6]
    source = read_snapshot(RunDir(run).snapshot_path(6)).model.state_dict()
    new = read_snapshot(RunDir(adapted).snapshot_path(6)).model.state_dict()
    changed = {k for k in source if not torch.equal(source[k], new[k])}
    statistics = ("running_mean", "running_var", "num_batches_tracked")
    assert changed and all(k.endswith(statistics) for k in changed)
    assert not list(adapted.parent.glob(".run-adapted*")), "no staging folder left behind"


def test_evaluate_analyze_and_export_use_the_adapted_run(
    run: Path, adapted: Path, clip: Path, tmp_path: Path
) -> None:
    [metrics] = evaluate_run(adapted, device="cpu")
    assert (RunDir(adapted).eval_dir(6) / "metrics.json").is_file()
    assert metrics["partitions"]["train"]["n_images"] > 0
    plain = RunDir(run).scorer(6)
    scorer = RunDir(adapted).scorer(6)
    assert scorer != plain and "adapted" in scorer and scorer.endswith("shuffle1_6")
    [h5_plain] = analyze_videos(run, [clip], dest=tmp_path, show_progress=False, compile=False)
    [h5] = analyze_videos(adapted, [clip], dest=tmp_path, show_progress=False, compile=False)
    # DeepLabCut's name of the source with the adaptation's tag: never the source's file
    tag = RunDir(adapted).adaptation_tag()
    assert tag and h5.name == h5_plain.name.replace("shuffle1_6", f"{tag}shuffle1_6")
    poses, before = pd.read_hdf(h5), pd.read_hdf(h5_plain)
    assert poses.shape == before.shape == (10, 9)
    assert not np.allclose(poses.to_numpy(), before.to_numpy())
    exported = export_run(adapted, format="torchscript")
    assert scorer in exported.name


def test_the_same_adaptation_is_reused_and_another_one_is_refused(
    run: Path, adapted: Path, tmp_path: Path
) -> None:
    stamp = (adapted / "adaptation.json").stat().st_mtime_ns
    clip = Path(RunDir(adapted).adaptation()["frames"]["source"])
    assert adapt_run(run, clip, adapted, batch_size=32).path == adapted
    assert (adapted / "adaptation.json").stat().st_mtime_ns == stamp
    with pytest.raises(PoseshiftError) as excinfo:
        adapt_run(run, clip, adapted, batch_size=8)  # other options
    assert "--overwrite" in one_line_error(excinfo)
    with pytest.raises(PoseshiftError) as excinfo:
        adapt_run(run, clip, run)
    assert "the run itself" in one_line_error(excinfo)


def test_image_folders_and_projects_are_targets(run: Path, tmp_path: Path) -> None:
    spec = RunDir(run).spec()
    project = Path(spec.project)
    out = adapt_run(run, project, tmp_path / "on-project")
    frames = out.adaptation()["frames"]
    assert frames["kind"] == "project" and frames["frames"] == 6  # 2 videos x 3 frames
    assert all(len(image["sha256"]) == 64 for image in frames["images"])
    folder = adapt_run(run, project / "labeled-data" / "video0", tmp_path / "on-folder")
    assert folder.adaptation()["frames"]["frames"] == 3


def test_frozen_batchnorm_runs_are_refused_unless_asked(run: Path, tmp_path: Path) -> None:
    frozen = tmp_path / "frozen"
    shutil.copytree(run, frozen)
    spec = yaml.safe_load((frozen / "run.yaml").read_text())
    spec["train"]["batchnorm"] = {"mobilenetv2": "frozen"}
    (frozen / "run.yaml").write_text(yaml.safe_dump(spec))
    target = Path(spec["project"]) / "labeled-data"
    with pytest.raises(PoseshiftError) as excinfo:
        adapt_run(frozen, target, tmp_path / "out")
    assert "--frozen-batchnorm adapt" in one_line_error(excinfo)
    assert not (tmp_path / "out").exists()
    out = adapt_run(frozen, target, tmp_path / "out", frozen="adapt")
    assert out.adaptation()["frozen_batchnorm"] is True


def test_a_network_without_batchnorm_is_refused() -> None:
    model = PoseNet("mobilenetv2_035", 2)
    for module in list(model.backbone.modules()):
        for child, layer in list(module.named_children()):
            if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
                setattr(module, child, torch.nn.Identity())
    with pytest.raises(PoseshiftError) as excinfo:
        adapt_batchnorm(model, [np.zeros((32, 32, 3), np.uint8)])
    assert "no BatchNorm layers" in one_line_error(excinfo)


def test_cli_adapts_and_refuses_bad_frames(run: Path, clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli-adapted"
    result = CliRunner().invoke(app, ["adapt", str(run), str(clip), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "adaptation.json").read_text())["frames"]["kind"] == "video"
    empty = tmp_path / "empty"
    empty.mkdir()
    cli_refuses(["adapt", run, empty, "--out", tmp_path / "x"], empty)
    cli_refuses(["adapt", run, tmp_path / "missing.mp4", "--out", tmp_path / "x"], "missing.mp4")
    assert not (tmp_path / "x").exists()
