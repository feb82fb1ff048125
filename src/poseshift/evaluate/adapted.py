"""The study's "adapted" arm: each out-of-domain group evaluated after AdaBN on its own frames.

For a run's snapshot and every group (individual) of its out-of-domain partition, the
network's BatchNorm statistics are re-estimated on that group's images, labels unused
(``poseshift.predict.adapt.adapt_batchnorm``, as ``poseshift adapt RUN FOLDER`` does), and
those images are predicted with it. The metrics, pooled over groups like the plain
partition's, go to ``RUN/eval/snapshot-<it>/metrics_adapted.json`` as partition
``ood_adapted``, reused while the snapshot, run, images, labels and options (batch size
included: AdaBN normalizes each batch by its own statistics) are the same; the study tables
show them next to ``ood``. Frozen-BatchNorm runs are adapted too (the measurement of
``--frozen-batchnorm adapt``), marked so in the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from poseshift.data.scale import image_scales
from poseshift.device import pick_device
from poseshift.evaluate.evaluate import (
    evaluation_source,
    load_run_data,
    project_pcutoff,
    scale_pair_for,
)
from poseshift.evaluate.metrics import PCK_THRESHOLD, partition_metrics, pixel_errors
from poseshift.fsutil import write_json_atomic
from poseshift.models.posenet import read_snapshot
from poseshift.predict.adapt import adapt_batchnorm, frozen_families
from poseshift.predict.images import predict_images
from poseshift.predict.predictor import Predictor
from poseshift.run import RunDir

ADAPTED_PARTITION = "ood_adapted"


def evaluate_adapted(
    run_dir: str | Path,
    *,
    snapshot: str | int = "last",
    scale_pair: list[str] | None = None,
    scale_file: str | Path | None = None,
    threshold: float = PCK_THRESHOLD,
    batch_size: int = 16,
    device: str = "auto",
    force: bool = False,
) -> dict:
    """``metrics_adapted.json`` of one snapshot (computed, or reused when its source matches)."""
    run = RunDir(run_dir)
    spec, membership, dataset = load_run_data(run)
    iteration = run.choose_snapshot(snapshot)
    path = run.adapted_metrics_file(iteration)
    pair = scale_pair_for(dataset, scale_pair, scale_file)
    snapshot_file = run.snapshot_path(iteration)
    rows = dataset.indices_of(membership["ood"])
    source = {
        **evaluation_source(spec, dataset, rows, snapshot_file, pair, scale_file, threshold),
        "method": "adabn per group",
        "batch_size": batch_size,  # the batches' composition shapes deeper layers' statistics
    }
    if not force and path.is_file():
        cached = json.loads(path.read_text())
        if cached.get("source") == source:
            return cached
    scales = image_scales(dataset, pair, scale_file)
    groups = np.asarray(dataset.groups, dtype=object)[rows]
    chosen = pick_device(device)
    poses = np.zeros((len(rows), len(dataset.bodyparts), 3), dtype=np.float32)
    for group in dict.fromkeys(groups.tolist()):
        mine = np.flatnonzero(groups == group)
        loaded = read_snapshot(snapshot_file)
        frames = (dataset.load_image(int(rows[i])) for i in mine)
        adapt_batchnorm(
            loaded.model, frames, input_scale=loaded.input_scale, batch_size=batch_size,
            device=chosen,
        )  # fmt: skip
        predictor = Predictor(
            loaded.model, loaded.codec, input_scale=loaded.input_scale, device=chosen,
            precision="fp32", compile=False,
        )  # fmt: skip
        poses[mine] = predict_images(predictor, dataset, rows[mine], batch_size)
    metrics: dict[str, Any] = {
        "snapshot": iteration,
        "source": source,
        "frozen_batchnorm": frozen_families(run) is not None,
        "partitions": {
            ADAPTED_PARTITION: partition_metrics(
                pixel_errors(poses, dataset.keypoints[rows]),
                scales[rows],
                poses[..., 2],
                bodyparts=dataset.bodyparts,
                groups=groups.tolist(),
                threshold=threshold,
                pcutoff=project_pcutoff(dataset),
            )
        },
    }
    write_json_atomic(path, metrics)
    return metrics
