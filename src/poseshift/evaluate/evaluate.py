"""Evaluate a run's snapshots on train / within / ood: metrics.json, predictions, plots."""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from poseshift.data.labels import row_index
from poseshift.data.project import PoseDataset, load_project
from poseshift.data.scale import DEFAULT_PAIR, image_scales
from poseshift.data.splits import PARTITIONS
from poseshift.draw import DEFAULT_STYLE, save_comparison
from poseshift.errors import PoseshiftError
from poseshift.evaluate.metrics import PCK_THRESHOLD, partition_metrics, pixel_errors
from poseshift.fsutil import file_identity, write_json_atomic
from poseshift.predict.dlc_shuffle import dlc_scorer, project_naming
from poseshift.predict.images import predict_images
from poseshift.predict.outputs import poses_frame, write_poses
from poseshift.predict.predictor import run_predictor
from poseshift.run import RunDir
from poseshift.spec import RunSpec, run_hash

EVAL_METRICS = ("error_px", "normalized_error", "pck")


def default_scale_pair(dataset: PoseDataset) -> tuple[str, str]:
    """Nose/Eye as in Horse-10, else the first and last bodypart (e.g. snout-tailbase)."""
    if all(name in dataset.bodyparts for name in DEFAULT_PAIR):
        return DEFAULT_PAIR
    pair = (dataset.bodyparts[0], dataset.bodyparts[-1])
    warnings.warn(
        f"no Nose/Eye bodyparts: errors are normalized by the {pair[0]}-{pair[1]} distance; "
        "choose with --scale-pair",
        stacklevel=2,
    )
    return pair


def load_run_data(run: RunDir) -> tuple[RunSpec, dict, PoseDataset]:
    """A run's spec, its split membership and its project, checked to belong together."""
    spec = run.spec()
    membership = run.membership()
    dataset = load_project(spec.project)
    if membership.get("bodyparts", dataset.bodyparts) != dataset.bodyparts:
        raise PoseshiftError(
            f"project {spec.project} has bodyparts {dataset.bodyparts} but run {run.path} was "
            f"trained on {membership['bodyparts']}; evaluate on the project it was trained on"
        )
    return spec, membership, dataset


def scale_pair_for(
    dataset: PoseDataset, scale_pair: Sequence[str] | None, scale_file: str | Path | None
) -> Sequence[str] | None:
    """The bodypart pair that normalizes errors; None when an official scale file is used."""
    return scale_pair or (None if scale_file else default_scale_pair(dataset))


def project_pcutoff(dataset: PoseDataset) -> float:
    """config.yaml's ``pcutoff`` (checked by ``read_config``), DeepLabCut's 0.6 when unset; 0,
    keeping all, is honoured."""
    value = dataset.config.get("pcutoff")
    return cast(float, DEFAULT_STYLE["pcutoff"]) if value in (None, "") else float(value)


def labels_hash(dataset: PoseDataset, rows: np.ndarray) -> str:
    """A hash of the evaluated images (each file's identity) and their keypoints: edited
    labels, or frames re-extracted under the same names, change the metrics."""
    files = [file_identity(dataset.image_path(i)) for i in rows.tolist()]
    digest = hashlib.sha256(json.dumps(files).encode())
    digest.update(np.ascontiguousarray(dataset.keypoints[rows], dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def evaluation_source(
    spec: RunSpec,
    dataset: PoseDataset,
    rows: np.ndarray,
    snapshot: Path,
    pair: Sequence[str] | None,
    scale_file: str | Path | None,
    threshold: float,
) -> dict:
    """What the cached metrics of a snapshot on the images ``rows`` depend on; they are
    reused only while it matches."""
    return {
        "run": run_hash(spec),
        "snapshot": file_identity(snapshot),
        "labels": labels_hash(dataset, rows),
        "scale_pair": list(pair) if pair else None,
        "scale_file": file_identity(scale_file) if scale_file else None,
        "threshold": threshold,
        "pcutoff": project_pcutoff(dataset),
    }


def _reusable(out_dir: Path, source: dict, plots: list[Path]) -> dict | None:
    """The cached metrics of ``out_dir`` if computed from ``source`` with the plots asked."""
    try:
        metrics = json.loads((out_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    if metrics.get("source") != source or not all(p.is_file() for p in plots):
        return None
    return metrics


def log_evaluation(run: RunDir, metrics: dict) -> None:
    """A snapshot's metrics per partition, as ``eval/<partition>/<metric>`` at its iteration."""
    with run.board_writer() as board:
        for partition, values in metrics["partitions"].items():
            for name in EVAL_METRICS:
                if values.get(name) is not None:
                    board.add_scalar(f"eval/{partition}/{name}", values[name], metrics["snapshot"])


def evaluate_run(
    run_dir: str | Path,
    *,
    snapshots: str | int = "last",
    plot: int = 0,
    scale_pair: Sequence[str] | None = None,
    scale_file: str | Path | None = None,
    threshold: float = PCK_THRESHOLD,
    batch_size: int = 8,
    device: str = "auto",
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """Evaluate the chosen snapshots, loading the project once.

    A snapshot's metrics.json is reused (unless ``force``) only when its recorded source
    (snapshot file, run, images and labels, scale pair or file, threshold, pcutoff) matches
    and the ``plot`` images asked for exist; recomputed metrics remove the old plots.
    ``progress(done, total)`` counts predicted images.
    """
    run = RunDir(run_dir)
    spec, membership, dataset = load_run_data(run)
    chosen = run.choose_snapshots(snapshots)
    pair = scale_pair_for(dataset, scale_pair, scale_file)
    scales = image_scales(dataset, pair, scale_file)
    rows = {part: dataset.indices_of(membership[part]) for part in PARTITIONS}
    everything = np.concatenate([rows[p] for p in PARTITIONS])
    pcutoff = project_pcutoff(dataset)
    results, done = [], [0]
    total = len(everything) * len(chosen)

    def advance(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], total)

    for iteration in chosen:
        out_dir = run.eval_dir(iteration)
        snapshot = run.snapshot_path(iteration)
        source = evaluation_source(spec, dataset, everything, snapshot, pair, scale_file, threshold)
        plots = [
            _plot_path(out_dir, part, n)
            for part in PARTITIONS
            for n in range(len(rows[part][:plot]))
        ]
        cached = None if force else _reusable(out_dir, source, plots)
        if cached is not None:
            results.append(cached)
            advance(len(everything))
            continue
        # Plots of earlier weights or labels must not be reused with the new metrics.
        shutil.rmtree(out_dir / "plots", ignore_errors=True)
        # fp32 and eager: images come in many sizes (one compilation each)
        predictor = run_predictor(run, iteration, device=device, precision="fp32", compile=False)
        poses = predict_images(predictor, dataset, everything, batch_size, advance)
        by_index = dict(zip(everything.tolist(), range(len(everything)), strict=True))
        metrics: dict[str, Any] = {"snapshot": iteration, "source": source, "partitions": {}}
        for part in PARTITIONS:
            index = rows[part]
            predicted = poses[[by_index[i] for i in index.tolist()]]
            errors = pixel_errors(predicted, dataset.keypoints[index])
            metrics["partitions"][part] = partition_metrics(
                errors,
                scales[index],
                predicted[..., 2],
                bodyparts=dataset.bodyparts,
                groups=[dataset.groups[i] for i in index],
                threshold=threshold,
                pcutoff=pcutoff,
            )
            for n, i in enumerate(index[:plot].tolist()):
                save_comparison(
                    _plot_path(out_dir, part, n),
                    dataset.load_image(i),
                    dataset.keypoints[i],
                    predicted[n],
                )
        # In label order, under the labels' own row index: DeepLabCut's evaluation joins on it.
        order = sorted(everything.tolist())
        frame = poses_frame(
            dlc_scorer(spec, iteration, project_naming(spec.project), run.adaptation_tag()),
            dataset.bodyparts,
            poses[[by_index[i] for i in order]],
            row_index([dataset.images[i] for i in order], dataset.index_style),
        )
        write_poses(out_dir / "predictions.h5", frame, csv=False)
        write_json_atomic(out_dir / "metrics.json", metrics)
        log_evaluation(run, metrics)  # TensorBoard, next to the training curves
        results.append(metrics)
    return results


def _plot_path(out_dir: Path, part: str, n: int) -> Path:
    return out_dir / "plots" / f"{part}-{n:02d}.png"
