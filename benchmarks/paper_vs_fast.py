"""Table of the `paper` vs `fast` study (benchmarks/paper_vs_fast.yaml): error vs training time.

For every evaluated snapshot of every run in the study folder: iterations, images seen,
training time up to the snapshot (the sum of the logged intervals, iterations x batch /
images per second from log.jsonl, so evaluation and start-up are excluded), and the mean
pixel error / normalized error of train, within- and out-of-domain images.

    .venv/bin/python benchmarks/paper_vs_fast.py /tmp/paper-vs-fast
    .venv/bin/python benchmarks/paper_vs_fast.py /tmp/paper-canvas --arm train.augment.canvas
    .venv/bin/python benchmarks/paper_vs_fast.py /tmp/fast-pretrained --arm init,shuffle
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml


def training_seconds(run: Path, batch_size: int) -> dict[int, float]:
    """Cumulative training seconds at each logged iteration."""
    elapsed, previous, out = 0.0, 0, {}
    for line in (run / "log.jsonl").read_text().splitlines():
        record = json.loads(line)
        elapsed += (record["iteration"] - previous) * batch_size / record["images_per_s"]
        previous = record["iteration"]
        out[previous] = elapsed
    return out


def error_cells(metrics: dict) -> list[str]:
    """Train px, then within and out-of-domain px (normalized) of a snapshot's metrics."""
    parts = metrics["partitions"]
    return [
        f"{parts['train']['error_px']:.2f}",
        *(
            f"{parts[p]['error_px']:.2f} ({parts[p]['normalized_error']:.3f})"
            for p in ("within", "ood")
        ),
    ]


def run_value(spec: dict, dotted_key: str) -> object:
    """The value of a dotted key of run.yaml (None where it is absent)."""
    value: object = spec
    for key in dotted_key.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument(
        "--arm",
        default="preset",
        help="run.yaml keys (dotted, comma-separated) naming each run's arm",
    )
    args = parser.parse_args()
    arm_keys = args.arm.split(",")
    arm_columns = " | ".join(key.rsplit(".", 1)[-1] for key in arm_keys)
    print(
        f"| {arm_columns} | iteration | images seen | training min | train px "
        "| within px (norm.) | OOD px (norm.) |"
    )
    print("|---" * (len(arm_keys) + 6) + "|")
    for run in sorted((args.study / "runs").iterdir()):
        spec = yaml.safe_load((run / "run.yaml").read_text())
        batch = spec["train"]["batch_size"]
        seconds = training_seconds(run, batch)
        arm = " | ".join(str(run_value(spec, key)) for key in arm_keys)
        for metrics_path in sorted(run.glob("eval/snapshot-*/metrics.json")):
            metrics = json.loads(metrics_path.read_text())
            iteration = int(metrics_path.parent.name.split("-")[1])
            print(
                f"| {arm} | {iteration:,} | {iteration * batch:,} | "
                f"{seconds.get(iteration, float('nan')) / 60:.1f} | "
                + " | ".join(error_cells(metrics))
                + " |"
            )


if __name__ == "__main__":
    main()
