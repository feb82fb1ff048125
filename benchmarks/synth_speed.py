"""How long does the synthetic benchmark take to generate? (target: 1,200 frames < 30 s)

Times ``generate`` end to end (render, PNG encoding, DeepLabCut label files, staging rename)
into a temporary folder, best of ``--repeats`` runs.

    .venv/bin/python benchmarks/synth_speed.py --individuals 30 --frames 40 --size 288x162
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from poseshift.datasets.synthetic.generate import generate, parse_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--individuals", type=int, default=30)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", default="288x162")
    parser.add_argument("--domain-shift", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    size = parse_size(args.size)
    times = []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as workdir:
            start = time.perf_counter()
            dataset = generate(
                Path(workdir) / "synth",
                individuals=args.individuals,
                frames_per_individual=args.frames,
                size=size,
                seed=repeat,
                domain_shift=args.domain_shift,
            )
            times.append(time.perf_counter() - start)
        print(f"run {repeat}: {len(dataset)} frames in {times[-1]:.2f} s", flush=True)
    best = min(times)
    print(
        f"best of {args.repeats}: {best:.2f} s for {len(dataset)} frames at {args.size} "
        f"({len(dataset) / best:.0f} frames/s, {1000 * best / len(dataset):.1f} ms/frame; "
        f"{os.cpu_count()} CPUs)"
    )


if __name__ == "__main__":
    main()
