"""Horse-C: a run's errors on corrupted copies of its test images.

For every corruption and severity in a folder made by ``poseshift data corrupt``, the run's
snapshot predicts the corrupted within-domain and out-of-domain images. Errors are normalized
by the clean project's scales, so the numbers compare directly with ``metrics.json``; the same
images are also scored clean. The summary is the mean over all corruptions and severities (the
WACV paper's Horse-C mean corruption error: a plain mean of errors, not ImageNet-C's
AlexNet-relative mCE). Results go to ``RUN_DIR/eval/snapshot-<it>/corruptions.json``, which is
rewritten after every corruption and severity so an interrupted evaluation resumes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from poseshift.data.scale import image_scales
from poseshift.datasets.horse_c.build import TEST_PARTITIONS, read_manifest
from poseshift.datasets.horse_c.corruptions import CORRUPTIONS
from poseshift.errors import PoseshiftError
from poseshift.evaluate.evaluate import (
    evaluation_source,
    load_run_data,
    project_pcutoff,
    scale_pair_for,
)
from poseshift.evaluate.metrics import PCK_THRESHOLD, pixel_errors, summarize
from poseshift.fsutil import write_json_atomic
from poseshift.predict.images import predict_images
from poseshift.predict.predictor import Predictor, run_predictor
from poseshift.run import RunDir

SUMMARY_KEYS = ("error_px", "normalized_error", "pck")


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def summarize_corruptions(results: dict, partitions: Sequence[str]) -> tuple[dict, dict]:
    """(mean over every corruption and severity, mean over severities per corruption)."""

    def mean_of(cells: list[dict]) -> dict:
        return {
            part: {key: _mean([cell[part][key] for cell in cells]) for key in SUMMARY_KEYS}
            for part in partitions
        }

    every = [cell for by_severity in results.values() for cell in by_severity.values()]
    per_corruption = {name: mean_of(list(cells.values())) for name, cells in results.items()}
    return mean_of(every), per_corruption


def _check_coverage(manifest: dict, parts: dict[str, list[str]], run: Path, folder: Path) -> None:
    available = set().union(*manifest["partitions"].values())
    for part, images in parts.items():
        missing = [x for x in images if x not in available]
        if missing:
            raise PoseshiftError(
                f"{folder} lacks {len(missing)} {part} image(s) of run {run}, e.g. "
                f"{missing[0]!r}: it was made from split {manifest['split']!r} shuffle "
                f"{manifest['shuffle']}; corrupt the run's split and shuffle instead"
            )


def evaluate_corruptions(
    run_dir: str | Path,
    corruptions_dir: str | Path,
    *,
    snapshots: str | int = "last",
    scale_pair: Sequence[str] | None = None,
    scale_file: str | Path | None = None,
    threshold: float = PCK_THRESHOLD,
    batch_size: int = 8,
    device: str = "auto",
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """Score the chosen snapshots on every corrupted copy; finished reports are reused."""
    run, folder = RunDir(run_dir), Path(corruptions_dir)
    manifest = read_manifest(folder)
    spec, membership, dataset = load_run_data(run)
    chosen = run.choose_snapshots(snapshots)
    parts = {p: membership[p] for p in TEST_PARTITIONS if membership.get(p)}
    if not parts:
        raise PoseshiftError(f"run {run_dir} has no within or ood test images to corrupt")
    _check_coverage(manifest, parts, run.path, folder)
    pair = scale_pair_for(dataset, scale_pair, scale_file)
    scales = image_scales(dataset, pair, scale_file)
    rows = {p: dataset.indices_of(images) for p, images in parts.items()}
    everything = np.concatenate(list(rows.values()))
    pcutoff = project_pcutoff(dataset)
    cells = [(c, s) for c in CORRUPTIONS for s in manifest["done"].get(c, [])]
    if not cells:
        raise PoseshiftError(f"{folder}/manifest.json lists no finished corrupted copies")
    copies = {  # which corrupted copies the cached report scored
        "corruptions_dir": str(folder.resolve()),
        **{k: manifest[k] for k in ("split", "shuffle", "seed", "images_sha256")},
    }

    def score(predictor: Predictor | None, root: Path) -> dict:
        assert predictor is not None  # loaded whenever anything is left to score
        poses = predict_images(
            predictor, dataclasses.replace(dataset, root=root), everything, batch_size
        )
        out, start = {}, 0
        for part, index in rows.items():
            predicted = poses[start : start + len(index)]
            start += len(index)
            errors = pixel_errors(predicted, dataset.keypoints[index])
            out[part] = summarize(errors, scales[index], predicted[..., 2], threshold, pcutoff)
        return out

    reports = []
    for iteration in chosen:
        path = run.eval_dir(iteration) / "corruptions.json"
        snapshot = run.snapshot_path(iteration)
        # What the cached report depends on: the copies, snapshot, labels, scales, cutoffs.
        source = {
            **copies,
            **evaluation_source(spec, dataset, everything, snapshot, pair, scale_file, threshold),
        }
        report = json.loads(path.read_text()) if path.exists() and not force else None
        if report is None or report.get("source") != source:
            report = {"snapshot": iteration, "source": source, "clean": None, "results": {}}
        todo = [(c, s) for c, s in cells if str(s) not in report["results"].get(c, {})]
        fresh = todo or report["clean"] is None
        predictor = (  # fp32 and eager, as in evaluate_run
            run_predictor(run, iteration, device=device, precision="fp32", compile=False)
            if fresh
            else None
        )
        if report["clean"] is None:
            report["clean"] = score(predictor, dataset.root)
        for n, (corruption, severity) in enumerate(todo, start=1):
            root = folder / corruption / str(severity)
            if not (root / "config.yaml").is_file():
                raise PoseshiftError(
                    f"{root} is missing; make it again with 'poseshift data corrupt'"
                )
            report["results"].setdefault(corruption, {})[str(severity)] = score(predictor, root)
            report["complete"] = False
            write_json_atomic(path, report)
            if progress:
                progress(n, len(todo))
        report["mean"], report["per_corruption"] = summarize_corruptions(
            report["results"], list(parts)
        )
        report["complete"] = True
        write_json_atomic(path, report)
        reports.append(report)
    return reports
