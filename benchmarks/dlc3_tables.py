# ruff: noqa: E501, RUF001
"""Print the markdown tables of train_vs_dlc3.md / analyze_vs_dlc3.md from the JSON results.

.venv/bin/python benchmarks/dlc3_tables.py /tmp/dlc3-bench
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def fmt(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def train_tables(report: dict) -> None:
    speed = report["speed"]
    print("| round | tool | images/s | per step (images/s) | CPU-s / image | load before → after |")
    print("|---|---|---|---|---|---|")
    for r in speed:
        print(
            f"| {r['round']} | {r['tool']} | {fmt(r['images_per_s'], 3)} | "
            f"{', '.join(f'{v:.2f}' for v in r['per_interval'])} | {fmt(r['cpu_s_per_image'])} | "
            f"{r['load_before']:.2f} → {r['load_after']:.2f} |"
        )
    tools = sorted({r["tool"] for r in speed})
    dlc = [r for r in speed if r["tool"] == "deeplabcut (resnet50_gn)"]
    print()
    print(
        "| tool | images/s (median of rounds) | × DLC3 (same round, median) | CPU-s / image | × DLC3 by CPU time |"
    )
    print("|---|---|---|---|---|")
    for tool in tools:
        runs = [r for r in speed if r["tool"] == tool]
        ratios, cpu_ratios = [], []
        for r in runs:
            ref = next(d for d in dlc if d["round"] == r["round"])
            ratios.append(r["images_per_s"] / ref["images_per_s"])
            if r["cpu_s_per_image"] and ref["cpu_s_per_image"]:
                cpu_ratios.append(ref["cpu_s_per_image"] / r["cpu_s_per_image"])
        print(
            f"| {tool} | {fmt(statistics.median(r['images_per_s'] for r in runs), 3)} | "
            f"{fmt(statistics.median(ratios))}x | "
            f"{fmt(statistics.median(r['cpu_s_per_image'] for r in runs))} | "
            f"{fmt(statistics.median(cpu_ratios)) + 'x' if cpu_ratios else '-'} |"
        )
    if "accuracy" in report:
        accuracy_table(report)


def accuracy_table(report: dict) -> None:
    acc = report["accuracy"]
    row = acc["dlc"]["rows"][0][0]
    arms = {k: v for k, v in acc.items() if isinstance(v, dict) and "partitions" in v}
    parts = {name: arm["partitions"] for name, arm in arms.items()}
    print()
    print(
        f"Accuracy after {acc['epochs']} epochs at {acc['crop'][0]}x{acc['crop'][1]} "
        f"(poseshift {acc['poseshift_iterations']} iterations of 8):"
    )
    print()
    print("| | DeepLabCut 3 | " + " | ".join(parts) + " |")
    print("|---|---|" + "---|" * len(parts))

    def cells(fn) -> str:
        return " | ".join(fn(p) for p in parts.values())

    print(
        f"| test images | {len(report['split']['test'])} | {cells(lambda p: str(p['within']['n_images']))} |"
    )
    print(
        f"| test error (px) | {fmt(row['test rmse'])} | {cells(lambda p: fmt(p['within']['error_px']))} |"
    )
    print(
        f"| train error (px) | {fmt(row['train rmse'])} | {cells(lambda p: fmt(p['train']['error_px']))} |"
    )
    print(
        f"| test error, p >= cutoff (px) | {fmt(row['test rmse_pcutoff'])} (p >= {row['pcutoff']}) | "
        f"{cells(lambda p: fmt(p['within'].get('error_px_pcutoff')))} |"
    )
    print(
        "| test normalized (snout-tailbase) / PCK@0.3 | - | "
        + cells(
            lambda p: (
                f"{fmt(p['within'].get('normalized_error'), 3)} / {fmt(p['within'].get('pck'), 3)}"
            )
        )
        + " |"
    )
    walls = " | ".join(f"{arm['train_wall_s']:.0f}" for arm in arms.values())
    print(f"| training wall time (s) | {acc['dlc_train_wall_s']:.0f} | {walls} |")


def analyze_tables(report: dict) -> None:
    print("Sweep (frames/s, run_duration; load before each):")
    print()
    sweep = report["sweep"]
    batches = [r["batch_size"] for r in sweep["dlc"]]
    print("| tool | " + " | ".join(f"b={b}" for b in batches) + " |")
    print("|---|" + "---|" * len(batches))
    for tool, runs in sweep.items():
        cells = [f"{r['fps']:.2f} (load {r['load_before']:.1f})" for r in runs]
        print(f"| {tool} | " + " | ".join(cells) + " |")
    print()
    final = report["final"]
    dlc_best = max(r["fps"] for r in final["dlc"])
    print("| tool | batch | frames/s (rounds) | × DLC3 best | load before |")
    print("|---|---|---|---|---|")
    for tool, runs in final.items():
        fps = [r["fps"] for r in runs]
        print(
            f"| {tool} | {runs[0]['batch_size']} | {', '.join(f'{v:.2f}' for v in fps)} | "
            f"{statistics.median(fps) / statistics.median(r['fps'] for r in final['dlc']):.2f}x | "
            f"{', '.join(format(r['load_before'], '.1f') for r in runs)} |"
        )
    print(f"\nDLC3 best: {dlc_best:.2f} frames/s")
    print("\nbf16 check:", json.dumps(report["bf16_check"], indent=1))


def main() -> None:
    work = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/dlc3-bench")
    for name, fn in (
        ("train_vs_dlc3.json", train_tables),
        ("analyze_vs_dlc3.json", analyze_tables),
    ):
        path = work / name
        if path.exists():
            print(f"## {name}\n")
            fn(json.loads(path.read_text()))
            print()


if __name__ == "__main__":
    main()
