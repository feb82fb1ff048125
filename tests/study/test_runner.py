"""Study plans and the runner: expansion, local runs, resume/skip, failures, Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import make_project
from poseshift.errors import PoseshiftError
from poseshift.spec import preset_path
from poseshift.study.plan import expand, load_plan
from poseshift.study.runner import run_study
from poseshift.train.schedule import learning_rate

TINY_OVERRIDES = {
    "iterations": 4,
    "batch_size": 2,
    "snapshots": [2, 4],
    "checkpoint_every": 100,
    "log_every": 1,
    "num_workers": 0,
    "precision": "fp32",
    "augment": {"crop": [64, 48], "global_scale": 1.0},
}


def write_plan(tmp_path: Path, inits: list[str], fractions=(0.5,), shuffles: int = 1) -> Path:
    make_project(tmp_path / "proj", groups=4, frames=3)
    plan = {
        "name": "tiny",
        "project": str(tmp_path / "proj"),
        "split": {
            "name": "tiny-split",
            "train_groups": 2,
            "shuffles": shuffles,
            "fractions": list(fractions),
        },
        "grid": {
            "backbones": ["mobilenetv2_035"],
            "inits": inits,
            "preset": "fast",
            "overrides": TINY_OVERRIDES,
        },
        "evaluate": {"snapshots": "all", "plot": 0, "scale_pair": ["Nose", "Eye"]},
    }
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    return path


def test_shipped_plans_expand_to_the_paper_grid() -> None:
    assert len(expand(load_plan("paper"))) == 6 * 2 * 3 * 5 + 4
    assert len(expand(load_plan("wacv"))) == 13 * 2 * 3 * 5 + 4
    long = [r for r in expand(load_plan("paper")) if r.spec.preset == "paper-long"]
    assert {(r.spec.backbone, r.spec.fraction) for r in long} == {
        ("resnet50", 0.05),
        ("resnet50", 0.5),
    }
    assert all(r.spec.train.iterations == 600_000 for r in long)
    # WACV's EfficientNets: DeepLabCut 2.2's Adam + TF cosine_decay(5e-4, 30k, alpha 0.02)
    for run in expand(load_plan("wacv")):
        efficientnet = run.spec.backbone.startswith("efficientnet")
        assert (run.spec.train.optimizer == "adamw") == efficientnet
        if efficientnet:
            lrs = [
                learning_rate(run.spec.train, i, run.spec.init) for i in (0, 15_000, 30_000, 99_999)
            ]
            assert lrs == pytest.approx([5e-4, 5e-4 * (0.98 * 0.5 + 0.02), 1e-5, 1e-5])
            assert run.spec.train.weight_decay == 0.0
    demo = expand(load_plan("demo"))
    assert len({r.spec.backbone for r in demo}) >= 3


def test_plan_errors_name_the_key(tmp_path: Path) -> None:
    path = write_plan(tmp_path, ["scratch"])
    data = yaml.safe_load(path.read_text())
    data["grid"]["backbones"] = ["resnet5"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PoseshiftError, match=r"grid.backbones: unknown backbone 'resnet5'"):
        load_plan(path)
    data["grid"]["backbones"] = ["resnet50"]
    data["grid"]["overrides"] = {"iters": 5}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PoseshiftError, match=r"grid.overrides: unknown key 'iters'"):
        load_plan(path)
    data["grid"]["overrides"] = {}
    # typos fail when the plan loads, not after every run has trained
    for block, key, typo in [("split", "scheme", "randon"), ("evaluate", "snapshots", "lastt")]:
        path.write_text(yaml.safe_dump({**data, block: {**data[block], key: typo}}))
        with pytest.raises(PoseshiftError, match=rf"{block}\.{key}: must be one of .*{typo}"):
            load_plan(path)


def test_two_different_runs_never_share_a_run_id(tmp_path: Path) -> None:
    """Init files or a preset file named like another (or like a shipped preset) get ids of
    their own; the same run asked for twice is listed once."""
    path = write_plan(tmp_path, ["scratch"])
    plan = yaml.safe_load(path.read_text())
    inits = [str(tmp_path / lab / "backbone.pth") for lab in ("lab_a", "lab_b")]
    preset = tmp_path / "mine" / "fast.yaml"
    preset.parent.mkdir()
    shipped = yaml.safe_load(preset_path("fast").read_text())
    preset.write_text(yaml.safe_dump({**shipped, "seed": 7}))
    plan["grid"]["inits"] = inits
    plan["extra"] = [
        {**plan["grid"], "inits": ["scratch"], "preset": str(preset)},
        {**plan["grid"], "inits": ["scratch"]},
        {**plan["grid"], "inits": ["scratch"]},  # the same run again
    ]
    path.write_text(yaml.safe_dump(plan))
    runs = expand(load_plan(path))
    assert len({r.run_id for r in runs}) == len(runs) == 4
    assert {(r.spec.init, r.spec.preset) for r in runs} == {
        (inits[0], "fast"),
        (inits[1], "fast"),
        ("scratch", str(preset)),
        ("scratch", "fast"),
    }


def run_ids(plan) -> dict[str, str]:
    """Run id by init name; each is readable plus the hash of the overridden recipe keys."""
    ids = {Path(r.spec.init).stem: r.run_id for r in expand(plan)}
    assert all(i.startswith(f"mobilenetv2_035-{init}-s1-f") for init, i in ids.items())
    return ids


def test_local_study_runs_skips_and_records_failures(tmp_path: Path) -> None:
    plan = load_plan(write_plan(tmp_path, ["scratch", str(tmp_path / "missing.pth")]))
    ids = run_ids(plan)
    assert ids["scratch"].startswith("mobilenetv2_035-scratch-s1-f0.5-fast-")
    out = tmp_path / "study"
    result = run_study(plan, out, show_progress=False)
    assert result.done == [ids["scratch"]]
    assert result.failed == [ids["missing"]]
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 1 * 2 * 3  # one run x two snapshots x three partitions
    assert set(table["partition"]) == {"train", "within", "ood"}
    assert table["imagenet_top1"].notna().all() and set(table["iteration"]) == {2, 4}
    status = pd.read_csv(out / "status.csv").set_index("run_id")
    assert "missing.pth" in status.loc[ids["missing"], "error"]
    assert (out / "results_bodyparts.csv").is_file() and (out / "plan.yaml").is_file()

    log = out / "runs" / ids["scratch"] / "log.jsonl"
    stamp = log.stat().st_mtime_ns
    again = run_study(plan, out, show_progress=False)
    assert again.done == [] and len(again.skipped) == 2  # the failed run is not retried
    assert log.stat().st_mtime_ns == stamp
    retried = run_study(plan, out, retry_failed=True, show_progress=False)
    assert retried.failed == [ids["missing"]]


def test_ray_backend(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    plan = load_plan(
        write_plan(tmp_path, ["scratch", str(tmp_path / "missing.pth")], fractions=(0.34, 0.67))
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        result = run_study(
            plan, tmp_path / "study", backend="ray", cpus_per_run=1, show_progress=False
        )
    finally:
        ray.shutdown()
    assert len(result.done) == 2 and len(result.failed) == 2
    table = pd.read_csv(tmp_path / "study" / "results.csv")
    assert sorted(set(table["fraction"])) == [0.34, 0.67]
    [run_id] = [r.run_id for r in expand(plan) if "scratch-s1-f0.34-fast-" in r.run_id]
    run = tmp_path / "study" / "runs" / run_id
    assert json.loads((run / "status.json").read_text()) == {"status": "done"}


def test_a_changed_override_is_another_run(tmp_path: Path) -> None:
    path = write_plan(tmp_path, ["scratch"])
    [first] = expand(load_plan(path))
    changed = yaml.safe_load(path.read_text())
    changed["grid"]["overrides"]["iterations"] = 6
    changed["grid"]["overrides"]["num_workers"] = 1  # execution: no part of the id
    path.write_text(yaml.safe_dump(changed))
    [second] = expand(load_plan(path))
    assert first.run_id != second.run_id
    assert first.run_id.rsplit("-", 1)[0] == second.run_id.rsplit("-", 1)[0]  # readable part
    changed["grid"]["overrides"]["num_workers"] = 0
    path.write_text(yaml.safe_dump(changed))
    assert expand(load_plan(path))[0].run_id == second.run_id


def test_a_done_run_of_a_changed_preset_is_not_skipped_silently(tmp_path: Path) -> None:
    path = write_plan(tmp_path, ["scratch"])
    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump({"iterations": 4, "warmup_iters": 1, "lr_schedule": "cosine"}))
    plan = yaml.safe_load(path.read_text())
    plan["grid"]["preset"] = str(preset)
    plan["grid"]["overrides"] = {k: v for k, v in TINY_OVERRIDES.items() if k != "iterations"}
    path.write_text(yaml.safe_dump(plan))
    out = tmp_path / "study"
    assert len(run_study(load_plan(path), out, show_progress=False).done) == 1
    recorded = (out / "plan.yaml").read_text()
    preset.write_text(yaml.safe_dump({"iterations": 6, "warmup_iters": 1, "lr_schedule": "cosine"}))
    message = r"runs/mobilenetv2_035-scratch-s1-f0\.5-tiny-\w+ is done with other settings than "
    message += r"this plan \(train\.iterations: 4 vs 6\), so the plan or its preset changed "
    message += r"since; use a new --out"
    with pytest.raises(PoseshiftError, match=message):
        run_study(load_plan(path), out, show_progress=False)
    assert (out / "plan.yaml").read_text() == recorded  # refused before any work


def test_study_cli_exits_1_when_a_run_failed(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from poseshift.cli import app

    path = write_plan(tmp_path, [str(tmp_path / "missing.pth")])
    result = CliRunner().invoke(app, ["study", "run", str(path), "--out", str(tmp_path / "s")])
    assert result.exit_code == 1, result.output
    assert "failed runs" in result.output


def test_the_adapted_arm_sits_next_to_the_plain_ood_numbers(tmp_path: Path) -> None:
    from poseshift.study.analysis import StudyTables
    from poseshift.study.report import summary_view

    path = write_plan(tmp_path, ["scratch"])
    data = yaml.safe_load(path.read_text())
    data["evaluate"].update(adapted=True, snapshots="last")
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "study"
    run_study(load_plan(path), out, show_progress=False)
    table = pd.read_csv(out / "results.csv")
    adapted = table[table["partition"] == "ood_adapted"]
    plain = table[table["partition"] == "ood"]
    assert list(adapted["iteration"]) == list(plain["iteration"]) == [4]
    assert adapted["n_images"].tolist() == plain["n_images"].tolist() == [6]  # 2 groups x 3
    assert adapted["normalized_error"].iloc[0] != plain["normalized_error"].iloc[0]
    [run_dir] = (out / "runs").iterdir()
    arm = run_dir / "eval" / "snapshot-0000004" / "metrics_adapted.json"
    record = json.loads(arm.read_text())
    plain_groups = json.loads((arm.parent / "metrics.json").read_text())["partitions"]["ood"]
    assert (
        record["partitions"]["ood_adapted"]["per_group"].keys() == plain_groups["per_group"].keys()
    )
    columns = summary_view(StudyTables.load(out))["columns"]
    assert (
        columns.index("OOD adapted\nnormalized error") == columns.index("OOD\nnormalized error") + 1
    )
    arm.unlink()  # a done run without the arm (e.g. the plan asked for it later) gets it
    assert run_study(load_plan(path), out, show_progress=False).skipped
    assert arm.is_file()


def test_a_plans_devices_reach_its_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``devices`` in a plan's overrides is what each run trains on (the local backend without
    GPUs keeps it)."""
    import poseshift.train.trainer as trainer

    seen = []

    def record(spec, run_dir, **_):
        seen.append(spec.execution.devices)
        raise PoseshiftError("stopped before training")

    monkeypatch.setattr(trainer, "train", record)
    path = write_plan(tmp_path, ["scratch"])
    plan = yaml.safe_load(path.read_text())
    plan["grid"]["overrides"]["devices"] = 2
    path.write_text(yaml.safe_dump(plan))
    result = run_study(load_plan(path), tmp_path / "study", show_progress=False)
    assert seen == [2] and len(result.failed) == 1


def test_done_runs_follow_a_changed_evaluate_block(tmp_path: Path) -> None:
    """results.csv is this plan's evaluation, not what an earlier plan left behind."""
    path = write_plan(tmp_path, ["scratch"])
    out = tmp_path / "study"

    def results(**evaluate) -> pd.DataFrame:
        data = yaml.safe_load(path.read_text())
        path.write_text(yaml.safe_dump({**data, "evaluate": {**data["evaluate"], **evaluate}}))
        run_study(load_plan(path), out, show_progress=False)
        return pd.read_csv(out / "results.csv").query("partition == 'within'")

    last = results(snapshots="last")
    assert last["iteration"].tolist() == [4]
    every = results(snapshots="all", scale_pair=["Nose", "Tail"])
    assert every["iteration"].tolist() == [2, 4]
    assert every["normalized_error"].iloc[1] != pytest.approx(last["normalized_error"].iloc[0])
    assert results(snapshots="last")["iteration"].tolist() == [4]


def test_official_files_must_be_the_plans_shuffles(tmp_path: Path) -> None:
    """A folder holding shuffles 2 and 3 is refused before any work for a 2-shuffle plan."""
    files = tmp_path / "official"
    files.mkdir()
    for k in (2, 3):
        (files / f"TrainTestInfo_shuffle{k}.csv").write_text("")
    path = write_plan(tmp_path, ["scratch"], shuffles=2)
    plan = yaml.safe_load(path.read_text())
    plan["split"]["from_files"] = str(files)
    path.write_text(yaml.safe_dump(plan))
    with pytest.raises(PoseshiftError, match=r"holds TrainTestInfo_shuffle\[2, 3\]\.csv"):
        run_study(load_plan(path), tmp_path / "study", show_progress=False)
    assert not (tmp_path / "study" / "plan.yaml").exists()


def test_the_estimate_times_the_crops_training_uses(tmp_path: Path) -> None:
    """Without a crop, training sees the project's largest frame: so does the estimate."""
    import torch

    from poseshift.study.estimate import estimate, plan_frame_size

    path = write_plan(tmp_path, ["scratch"])
    make_project(tmp_path / "proj", groups=4, frames=3, size=(100, 60))
    plan = yaml.safe_load(path.read_text())
    plan["grid"]["overrides"]["augment"] = {"global_scale": 1.0}
    path.write_text(yaml.safe_dump(plan))
    loaded = load_plan(path)
    assert plan_frame_size(loaded) == (100, 60)
    [row] = estimate(expand(loaded), torch.device("cpu"), False, plan_frame_size(loaded))
    assert row["input"] == "112x64"  # rounded up to 16, as the trainer does


def test_a_scale_file_missing_images_is_refused_before_training(tmp_path: Path) -> None:
    path = write_plan(tmp_path, ["scratch"])
    scales = tmp_path / "scale.h5"
    images = ["labeled-data/video0/img000.png"]  # one of the project's 12 images
    pd.DataFrame({"scale": [10.0]}, index=images).to_hdf(scales, key="df_with_missing")
    plan = yaml.safe_load(path.read_text())
    plan["evaluate"] = {**plan["evaluate"], "scale_pair": None, "scale_file": str(scales)}
    path.write_text(yaml.safe_dump(plan))
    with pytest.raises(PoseshiftError, match=r"scale file .*scale\.h5 has no row for 11 image"):
        run_study(load_plan(path), tmp_path / "study", show_progress=False)
    assert not (tmp_path / "study" / "runs").exists()
