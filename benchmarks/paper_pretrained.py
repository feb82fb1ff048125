"""Table of the pretrained `paper` vs `fast` study (benchmarks/paper_pretrained.yaml).

Every run's snapshots as the study evaluated them (BatchNorm running statistics at test,
what poseshift did for MobileNetV2 before), and, for runs trained with BatchNorm in
training mode at batch 1, once more with every image normalized by its own statistics (the
`paper` preset's ``batchnorm: {mobilenetv2: per_image}``, as DeepLabCut-TF evaluated its
MobileNetV2s): a copy of the run whose snapshots are converted (``normalize_per_image``),
evaluated by the same ``evaluate_run``. Training at batch 1 is the same computation in
both modes, so the second column is what the preset itself gives.

    .venv/bin/python benchmarks/paper_pretrained.py /tmp/paper-pretrained
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import yaml
from paper_vs_fast import error_cells, training_seconds

from poseshift.evaluate.evaluate import evaluate_run
from poseshift.models.posenet import read_snapshot, save_posenet
from poseshift.run import RunDir


def per_image_copy(run: Path, dest: Path) -> Path:
    """``run`` without checkpoints or evaluations, its snapshots normalizing per image."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("checkpoints", "eval", "tensorboard"))
    for iteration in RunDir(dest).snapshots():
        path = RunDir(dest).snapshot_path(iteration)
        snapshot = read_snapshot(path)
        model = snapshot.model.normalize_per_image()
        save_posenet(model, path, codec=snapshot.codec, input_scale=snapshot.input_scale)
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    args = parser.parse_args()
    print(
        "| preset | BatchNorm at test | iteration | training min | train loss | train px "
        "| within px (norm.) | OOD px (norm.) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for run in sorted((args.study / "runs").iterdir()):
        spec = yaml.safe_load((run / "run.yaml").read_text())
        batch = spec["train"]["batch_size"]
        seconds = training_seconds(run, batch)
        loss = {
            r["iteration"]: r["total"]
            for r in map(json.loads, (run / "log.jsonl").read_text().splitlines())
        }
        variants = [("running", run)]
        if batch == 1 and spec["train"]["batchnorm"].get("mobilenetv2", "train") == "train":
            copy = per_image_copy(run, args.study / "per-image" / run.name)
            evaluate_run(copy, snapshots="all")
            variants.append(("per image", copy))
        for iteration in RunDir(run).snapshots():
            for label, folder in variants:
                metrics_path = RunDir(folder).eval_dir(iteration) / "metrics.json"
                metrics = json.loads(metrics_path.read_text())
                print(
                    f"| {spec['preset']} | {label} | {iteration:,} | "
                    f"{seconds.get(iteration, float('nan')) / 60:.1f} | "
                    f"{loss.get(iteration, float('nan')):.4f} | "
                    + " | ".join(error_cells(metrics))
                    + " |"
                )


if __name__ == "__main__":
    main()
