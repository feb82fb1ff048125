"""Training images/s of the ``fast`` preset on 1, 2, ... data-parallel processes.

Trains the same run (synthetic Horse-10-like frames, MobileNetV2-0.35 from scratch, the
preset's global batch of 8) once per device count and prints the images/s of the logged
windows after the first (warm-up), as ``poseshift train --devices N`` runs it.

    .venv/bin/python benchmarks/ddp_scaling.py --devices 1 2 --device cpu --iterations 40
    .venv/bin/python benchmarks/ddp_scaling.py --devices 1 --threads 1 --device cpu --iterations 40
    .venv/bin/python benchmarks/ddp_scaling.py --devices 1 2 4 8 --device cuda --iterations 300
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
from pathlib import Path

import torch

from poseshift.datasets.synthetic.generate import generate, parse_size
from poseshift.spec import RunSpec, resolve_settings
from poseshift.train.trainer import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backbone", default="mobilenetv2_035")
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--log-every", type=int, default=5)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--individuals", type=int, default=10)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", default="288x162")
    parser.add_argument("--threads", type=int, help="torch threads of a 1-process run")
    args = parser.parse_args()
    if args.threads:  # ranks split this machine's cores between them by themselves
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    overrides = {"iterations": args.iterations, "log_every": args.log_every, "snapshots": []}
    overrides |= {"num_workers": args.workers, "checkpoint_every": 10**9, "device": args.device}
    config, execution = resolve_settings("fast", overrides)
    with tempfile.TemporaryDirectory() as workdir:
        project = Path(workdir) / "synth"
        generate(
            project,
            individuals=args.individuals,
            frames_per_individual=args.frames,
            size=parse_size(args.size),
        )
        for devices in args.devices:
            spec = RunSpec(
                project=str(project),
                backbone=args.backbone,
                init="scratch",
                preset="fast",
                train=config,
                execution=dataclasses.replace(execution, devices=devices),
            )
            run = Path(workdir) / f"run-{devices}"
            train(spec, run, show_progress=False)
            lines = (run / "log.jsonl").read_text().splitlines()
            rates = [json.loads(line)["images_per_s"] for line in lines][1:]
            best, median = max(rates), statistics.median(rates)
            who = f"{devices} processes" if devices > 1 else f"1 process, {threads} threads"
            print(
                f"{who}: {median:.1f} images/s median (best {best:.1f}), "
                f"{median / devices:.1f} per device; windows {rates}",
                flush=True,
            )


if __name__ == "__main__":
    main()
