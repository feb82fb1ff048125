"""bf16 or int8 against fp32 video poses for one trained poseshift run (the accuracy gate).

Runs ``poseshift analyze RUN CLIP --precision fp32`` and ``--precision bf16`` (or ``int8``
with ``--test int8``; compiled, 640x480, batch 1) and reports, of the keypoints the fp32
model finds with likelihood >= 0.6, the share whose bf16 / int8 prediction lies within 2 px
(target: >= 99 %). Needs a run that actually finds
the animal: a barely trained network has flat scoremaps whose argmax flips at random.

    .venv/bin/python benchmarks/bf16_check.py RUN_DIR /tmp/dlc3-bench/analyze/openfield300.mp4 \
        --out /tmp/dlc3-bench/bf16-check
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from analyze_vs_dlc3 import bf16_check, poseshift_analyze


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path)
    parser.add_argument("clip", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--test", choices=("bf16", "int8"), default="bf16")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    run = args.out / "run"  # a private copy: never write next to someone else's run
    if not run.exists():
        shutil.copytree(args.run, run, ignore=shutil.ignore_patterns("checkpoints", "eval"))
    results = {
        p: poseshift_analyze(run, args.clip, args.batch_size, (p, True), args.out / p)
        for p in ("fp32", args.test)
    }
    report = {
        "run": str(args.run),
        "speed": {
            p: {"fps": r["fps"], "load_before": r["load_before"]} for p, r in results.items()
        },
        "check": bf16_check(results["fp32"]["h5"], results[args.test]["h5"]),
    }
    for cutoff in (0.4, 0.2, 0.0):
        report[f"check_p{cutoff}"] = bf16_check(
            results["fp32"]["h5"], results[args.test]["h5"], cutoff=cutoff
        )
    (args.out / f"{args.test}_check.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
