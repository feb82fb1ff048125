"""The trainer: runs write a complete run dir, resume exactly, and skip when finished."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import TINY, spec_for
from poseshift.data.project import load_project, write_project
from poseshift.errors import PoseshiftError
from poseshift.models.posenet import build_posenet, load_posenet, read_snapshot, save_posenet
from poseshift.predict.predictor import Predictor, network_input
from poseshift.run import RunDir
from poseshift.spec import resolve_settings
from poseshift.train.schedule import learning_rate
from poseshift.train.trainer import train, training_size, typical_input_size


def losses(run_dir: Path) -> list[float]:
    return [json.loads(line)["total"] for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_run_dir_contents_and_skip(tiny_project: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = train(spec_for(tiny_project), run, show_progress=False)
    assert result.finished and result.iteration == 6
    for name in ("run.yaml", "split.json", "environment.json", "log.jsonl", "done.json"):
        assert (run / name).is_file(), name
    assert RunDir(run).snapshots() == [2, 4, 6]
    # A process killed while writing a snapshot leaves its temporary file behind.
    (run / "snapshots" / ".snapshot-0000008.pt.x1y2.tmp.pt").write_bytes(b"half")
    assert RunDir(run).snapshots() == [2, 4, 6]
    split = json.loads((run / "split.json").read_text())
    assert split["bodyparts"] == ["Nose", "Eye", "Tail"]
    assert len(split["train"]) + len(split["within"]) == 12
    assert len(losses(run)) == 6
    before = (run / "log.jsonl").read_text()
    again = train(spec_for(tiny_project), run, show_progress=False)
    assert again.skipped and (run / "log.jsonl").read_text() == before
    (run / "split.json").write_text('{"train": ["labeled-data/')  # a truncated file
    with pytest.raises(PoseshiftError, match=r"split\.json cannot be read \(JSONDecodeError\)"):
        train(spec_for(tiny_project), run, show_progress=False)


def test_resume_continues_exactly(tiny_project: Path, tmp_path: Path) -> None:
    full = tmp_path / "full"
    train(spec_for(tiny_project), full, show_progress=False)

    def interrupt(iteration: int, _losses: dict) -> None:
        if iteration == 3:
            raise KeyboardInterrupt

    part = tmp_path / "part"
    stopped = train(spec_for(tiny_project), part, on_iteration=interrupt, show_progress=False)
    assert not stopped.finished and stopped.iteration == 3
    assert not (part / "done.json").exists()
    resumed = train(spec_for(tiny_project), part, show_progress=False)
    assert resumed.finished and resumed.iteration == 6
    assert losses(part) == pytest.approx(losses(full), rel=1e-5, abs=1e-6)
    a = torch.load(full / "checkpoints" / "last.pt", weights_only=False)["model"]
    b = torch.load(part / "checkpoints" / "last.pt", weights_only=False)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    # Which hardware produced the weights: the first session, then each resume.
    sessions = json.loads((part / "environment.json").read_text())
    assert sessions["device"].startswith("CPU") and sessions["autocast"] == "off"
    assert [r["at_iteration"] for r in sessions["resumed"]] == [3]


def test_other_settings_in_the_same_dir_are_refused(tiny_project: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    stop = dataclasses.replace(TINY, iterations=1, snapshots=[])
    train(dataclasses.replace(spec_for(tiny_project), train=stop), run, show_progress=False)
    (run / "done.json").unlink()
    with pytest.raises(PoseshiftError, match="holds a run with different settings"):
        train(spec_for(tiny_project, backbone="mobilenetv2_050"), run, show_progress=False)


def _set_training_fraction(project: Path, fraction: float) -> None:
    config = project / "config.yaml"
    data = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**data, "TrainingFraction": [fraction]}))


def test_a_run_is_neither_resumed_nor_reused_on_other_data(
    tiny_project: Path, tmp_path: Path
) -> None:
    """Without --split the images come from config.yaml's TrainingFraction; a changed
    fraction or a corrected label must not resume into, or be reported as, the old run."""
    _set_training_fraction(tiny_project, 0.5)
    finished, part = tmp_path / "finished", tmp_path / "part"
    train(spec_for(tiny_project), finished, show_progress=False)

    def interrupt(iteration: int, _losses: dict) -> None:
        if iteration == 2:
            raise KeyboardInterrupt

    train(spec_for(tiny_project), part, on_iteration=interrupt, show_progress=False)
    _set_training_fraction(tiny_project, 0.95)
    for run in (finished, part):
        with pytest.raises(PoseshiftError, match=r"other data .*train images added"):
            train(spec_for(tiny_project), run, show_progress=False)
    dataset = load_project(tiny_project)
    first_train_image = dataset.indices_of(RunDir(finished).membership()["train"])[0]
    dataset.keypoints[first_train_image, 0] += 3.0  # a corrected label
    write_project(dataset)  # (config.yaml too)
    _set_training_fraction(tiny_project, 0.5)
    with pytest.raises(PoseshiftError, match="train_labels_sha256"):
        train(spec_for(tiny_project), finished, show_progress=False)


def test_a_finished_run_is_not_reused_after_its_init_file_changed(
    tiny_project: Path, tmp_path: Path
) -> None:
    init = tmp_path / "backbone.pt"
    torch.manual_seed(1)
    save_posenet(build_posenet("mobilenetv2_035", 3), init)
    run = tmp_path / "run"
    spec = spec_for(tiny_project, init=str(init))
    train(spec, run, show_progress=False)
    assert train(spec, run, show_progress=False).skipped
    torch.manual_seed(2)
    save_posenet(build_posenet("mobilenetv2_035", 3), init)  # other weights, same path
    with pytest.raises(PoseshiftError, match="init_sha256"):
        train(spec, run, show_progress=False)


class _TouchesAFile:
    """Unpickling this creates ``path``: what a booby-trapped checkpoint could do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_checkpoint_never_runs_code(tiny_project: Path, tmp_path: Path) -> None:
    """A run directory handed over by someone else is resumed without executing its files."""
    run = tmp_path / "run"

    def interrupt(iteration: int, _losses: dict) -> None:
        if iteration == 2:
            raise KeyboardInterrupt

    spec = spec_for(tiny_project, checkpoint_every=1)
    train(spec, run, on_iteration=interrupt, show_progress=False)
    checkpoint = run / "checkpoints" / "last.pt"
    state = torch.load(checkpoint, weights_only=True)
    torch.save({**state, "payload": _TouchesAFile(tmp_path / "ran")}, checkpoint)
    with pytest.raises(PoseshiftError, match=r"checkpoint .*last.pt cannot be read"):
        train(spec, run, show_progress=False)
    assert not (tmp_path / "ran").exists()
    state["model"] = {k: v for k, v in state["model"].items() if not k.startswith("head.")}
    torch.save(state, checkpoint)  # weights of another network: refused, not a traceback
    with pytest.raises(PoseshiftError, match=r"last\.pt: its weights do not fit .*delete it"):
        train(spec, run, show_progress=False)
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(PoseshiftError, match="delete it to restart the run"):
        train(spec, run, show_progress=False)


def test_presets_load_and_follow_the_paper() -> None:
    paper = resolve_settings("paper")[0]
    assert paper.batch_size == 1 and paper.iterations == 100_000 and paper.optimizer == "sgd"
    assert [learning_rate(paper, i, "imagenet") for i in (0, 9_999, 10_000)] == [0.005, 0.005, 0.02]
    assert [learning_rate(paper, i, "scratch") for i in (0, 4_999, 5_000, 24_999, 25_000)] == [
        1e-6,
        1e-6,
        1e-4,
        1e-4,
        0.02,
    ]
    # DeepLabCut-TF: no decay reached the loss; BatchNorm frozen for ResNets and EfficientNets
    assert paper.weight_decay == 0.0
    assert paper.batchnorm == {
        "resnet": "frozen",
        "efficientnet": "frozen",
        "mobilenetv2": "per_image",
    }
    # DeepLabCut 2.0's loader: scale jitter only; a scoremap disc of 17 original pixels
    assert paper.augment.rotation_p == paper.augment.motion_blur_p == 0.0
    assert paper.augment.scale_jitter == (0.5, 1.25) and paper.pos_dist_units == "image"
    assert paper.augment.canvas == "per_image"  # whole scaled images, DeepLabCut-TF's inputs
    assert paper.momentum == 0.9
    long = resolve_settings("paper-long")[0]
    assert long.batchnorm == paper.batchnorm and long.weight_decay == 0.0
    assert long.augment == paper.augment and long.pos_dist_units == paper.pos_dist_units
    # DeepLabCut-TF predicted at full resolution; fast predicts at the training scale
    assert paper.test_scale == long.test_scale == 1.0 and paper.augment.global_scale == 0.8
    assert long.iterations == 600_000 and learning_rate(long, 430_000, "imagenet") == 0.002
    fast = resolve_settings("fast")[0]
    assert learning_rate(fast, fast.iterations - 1, "imagenet") < learning_rate(
        fast, fast.warmup_iters, "imagenet"
    )


def test_preset_typos_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("iterations: 10\nbatchsize: 4\n")
    with pytest.raises(PoseshiftError, match=r"mine.yaml: unknown key 'batchsize'"):
        resolve_settings(str(path))
    path.write_text("iterations: ten\n")
    with pytest.raises(PoseshiftError, match=r"mine.yaml.iterations: expected int, got 'ten'"):
        resolve_settings(str(path))
    with pytest.raises(PoseshiftError, match="unknown preset 'papr'"):
        resolve_settings("papr")[0]


def _batchnorm_state(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Running means and BatchNorm scales of a snapshot's backbone, each concatenated."""
    state = load_posenet(path).backbone.state_dict()
    means = torch.cat([v for k, v in state.items() if k.endswith("running_mean")])
    scales = torch.cat(
        [state[k.replace("running_mean", "weight")] for k in state if k.endswith("running_mean")]
    )
    return means, scales


@pytest.mark.parametrize("mode", ["train", "frozen"])
def test_batchnorm_mode_per_family(tiny_project: Path, tmp_path: Path, mode: str) -> None:
    recipe = dataclasses.replace(TINY, snapshots=[1, 6], batchnorm={"mobilenetv2": mode})
    assert train(
        spec_for(tiny_project, train=recipe), tmp_path / "run", show_progress=False
    ).finished
    first, last = (_batchnorm_state(RunDir(tmp_path / "run").snapshot_path(i)) for i in (1, 6))
    statistics_moved = not torch.equal(first[0], last[0])
    assert statistics_moved == (mode == "train")
    assert not torch.equal(first[1], last[1])  # the affine scale learns in both modes
    if mode == "frozen":  # from scratch: the stored statistics are the initial ones
        assert torch.count_nonzero(last[0]) == 0


def test_per_image_batchnorm_trains_as_batch_one_and_predicts_image_by_image(
    tiny_project: Path, tmp_path: Path
) -> None:
    recipe = dataclasses.replace(TINY, snapshots=[6], batchnorm={"mobilenetv2": "per_image"})
    train(spec_for(tiny_project, train=recipe), tmp_path / "run", show_progress=False)
    model = load_posenet(RunDir(tmp_path / "run").snapshot_path(6)).eval()
    assert model.config()["batchnorm_statistics"] == "per_image"
    state = model.backbone.state_dict()
    assert all(torch.count_nonzero(v) == 0 for k, v in state.items() if k.endswith("running_mean"))
    # an image's prediction does not depend on the other images of its batch
    images = torch.rand(3, 3, 64, 96)
    with torch.no_grad():
        batched = model(images)["scoremaps"]
        alone = torch.cat([model(images[i : i + 1])["scoremaps"] for i in range(3)])
    torch.testing.assert_close(batched, alone, rtol=1e-3, atol=5e-4)


def test_per_image_canvas_trains_on_whole_scaled_images(
    tiny_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """canvas per_image (batch 1, as the paper presets): whole scaled images padded to the
    stride; a crop with it is refused, and --crop asks for a fixed canvas."""
    import poseshift.data.loader as loader

    shapes: list[tuple[int, ...]] = []
    collate = loader.pad_collate

    def recording(samples):
        batch = collate(samples)
        shapes.append(tuple(batch[0].shape))
        return batch

    monkeypatch.setattr(loader, "pad_collate", recording)
    augment = dataclasses.replace(TINY.augment, crop=None, canvas="per_image")
    recipe = dataclasses.replace(TINY, augment=augment, snapshots=[6], batch_size=1)
    train(spec_for(tiny_project, train=recipe), tmp_path / "run", show_progress=False)
    assert len(shapes) == 6 and len(set(shapes)) > 1  # the scale jitter varies the size
    largest = [round(v * 0.8 * 1.25) for v in (32, 48)]  # tiny frames are 48x32
    for _, height, width, _ in shapes:
        assert height % 16 == 0 and width % 16 == 0
        assert height < largest[0] + 16 and width < largest[1] + 16
    cropped = dataclasses.replace(recipe, augment=dataclasses.replace(augment, crop=(32, 32)))
    with pytest.raises(PoseshiftError, match=r"augment\.canvas must be fixed with a crop"):
        train(spec_for(tiny_project, train=cropped), tmp_path / "crop", show_progress=False)
    config, _ = resolve_settings("paper", {"augment": {"crop": (64, 48), "canvas": "fixed"}})
    assert config.augment.canvas == "fixed" and config.augment.rotation_p == 0.0


@pytest.mark.parametrize("test_scale", [None, 1.0])
def test_snapshots_predict_at_the_test_scale(
    tiny_project: Path, tmp_path: Path, test_scale: float | None
) -> None:
    recipe = dataclasses.replace(TINY, snapshots=[6], test_scale=test_scale)
    train(spec_for(tiny_project, train=recipe), tmp_path / "run", show_progress=False)
    snapshot = read_snapshot(RunDir(tmp_path / "run").snapshot_path(6))
    assert snapshot.input_scale == (test_scale or TINY.augment.global_scale)


def test_batchnorm_of_an_unknown_family_is_refused(tiny_project: Path, tmp_path: Path) -> None:
    recipe = dataclasses.replace(TINY, batchnorm={"resnets": "frozen"})
    with pytest.raises(PoseshiftError, match="batchnorm must be keyed by resnet, mobilenetv2"):
        train(spec_for(tiny_project, train=recipe), tmp_path / "run", show_progress=False)
    assert not (tmp_path / "run").exists()


def test_an_undilated_backbone_trains_on_multiples_of_32_and_predicts(
    tiny_project: Path, tmp_path: Path
) -> None:
    """backbone_stride 32: canvases and prediction inputs are padded to multiples of 32,
    and the snapshot says so (it is not a stride-16 network)."""
    augment = dataclasses.replace(TINY.augment, crop=None)
    recipe = dataclasses.replace(TINY, snapshots=[6], backbone_stride=32, augment=augment)
    assert training_size(recipe, (48, 32)) == (64, 32)  # 48x32 frames at global scale 0.8
    assert training_size(dataclasses.replace(recipe, backbone_stride=16), (48, 32)) == (48, 32)
    per_image = dataclasses.replace(augment, canvas="per_image")
    typical = typical_input_size(dataclasses.replace(recipe, augment=per_image), (480, 640))
    assert all(v % 32 == 0 for v in typical)
    train(spec_for(tiny_project, train=recipe), tmp_path / "run", show_progress=False)
    snapshot = read_snapshot(RunDir(tmp_path / "run").snapshot_path(6))
    assert snapshot.model.backbone_stride == 32
    frame = np.zeros((33, 47, 3), np.uint8)
    assert network_input(snapshot.model, torch.from_numpy(frame[None])).shape[-2:] == (64, 64)
    predictor = Predictor(snapshot.model, snapshot.codec, device="cpu", compile=False)
    poses = predictor.predict_frames([frame])
    assert poses.shape == (1, snapshot.model.num_keypoints, 3) and np.isfinite(poses).all()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"backbone_stride": 24}, "backbone_stride must be 16, or 32 with features: timm"),
        ({"backbone_stride": 32, "features": "deeplabcut"}, "backbone_stride must be 16, or 32"),
    ],
)
def test_a_backbone_stride_other_than_16_or_32_is_refused(changes: dict, message: str) -> None:
    with pytest.raises(PoseshiftError, match=message):
        resolve_settings("fast", changes, where="train options")
