"""Does test-time adaptation (AdaBN, ``poseshift adapt``) help on new animals and corruptions?

1. Trains the demo's networks on the synthetic benchmark through the study machinery (the
   ``demo`` plan at its full size: 16 individuals x 24 frames at 128x80, 6 training
   individuals, 250 ``fast`` iterations, MobileNetV2-0.35 / 1.0 and EfficientNet-Lite2, each
   ImageNet-pretrained and from scratch), plus MobileNetV2-0.35 twins trained with frozen
   BatchNorm (``batchnorm: {mobilenetv2: frozen}``) to measure ``--frozen-batchnorm adapt``.
2. Synthetic out of domain: every test individual (out-of-domain and, as a control, the
   within-domain ones) adapted on its own unlabeled frames (``TargetFrames`` of its
   ``labeled-data/<individual>`` folder, as ``poseshift adapt RUN FOLDER`` reads it), then
   normalized error and PCK@0.3 of its frames before and after.
3. Horse-C-style corruptions of the held-out images (within + ood; 5 ImageNet-C corruptions
   at severity 3, ``make_corruptions``): adapted on the corrupted test set of each
   corruption, as Schneider et al. do on ImageNet-C.

    PYTHONPATH=src .venv/bin/python benchmarks/adapt.py --work /tmp/adapt-bench

Trained runs are kept under ``--work`` and reused; results go to ``--work/adapt.json`` and
are printed as the markdown tables of ``benchmarks/adapt.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from poseshift.data.project import PoseDataset, load_project
from poseshift.data.scale import image_scales
from poseshift.demo import FULL, demo_plan
from poseshift.evaluate.metrics import pixel_errors, summarize
from poseshift.models.posenet import read_snapshot
from poseshift.predict.adapt import adapt_batchnorm
from poseshift.predict.images import predict_images
from poseshift.predict.predictor import Predictor
from poseshift.predict.target_frames import TargetFrames
from poseshift.run import RunDir
from poseshift.study.plan import Grid, Plan
from poseshift.study.runner import run_study

CORRUPTIONS = ["gaussian_noise", "motion_blur", "fog", "contrast", "jpeg_compression"]
SEVERITY = 3


def bench_plan(work: Path, backbones: list[str]) -> Plan:
    plan = demo_plan(work, FULL)
    grid = dataclasses.replace(plan.grid, backbones=backbones)
    frozen = Grid(
        backbones=["mobilenetv2_035"],
        inits=["imagenet", "scratch"],
        preset=grid.preset,
        overrides={**grid.overrides, "batchnorm": {"mobilenetv2": "frozen"}},
    )
    return dataclasses.replace(plan, grid=grid, extra=[frozen])


def predictor_of(model: torch.nn.Module, snapshot) -> Predictor:
    return Predictor(
        model, snapshot.codec, input_scale=snapshot.input_scale, device="cpu", compile=False
    )


def scores(
    predictor: Predictor, dataset: PoseDataset, rows: np.ndarray, scales: np.ndarray
) -> dict:
    poses = predict_images(predictor, dataset, rows, batch_size=16)
    errors = pixel_errors(poses, dataset.keypoints[rows])
    summary = summarize(errors, scales[rows])
    return {"normalized_error": summary["normalized_error"], "pck": summary["pck"]}


def pooled(parts: list[tuple[dict, int]]) -> dict:
    """Image-weighted means of per-individual scores."""
    total = sum(n for _, n in parts)
    return {key: sum(p[key] * n for p, n in parts) / total for key in ("normalized_error", "pck")}


def adapted_predictor(run: RunDir, frames, prior: float = 0.0) -> Predictor:
    snapshot = read_snapshot(run.snapshot_path(run.snapshots()[-1]))
    adapt_batchnorm(snapshot.model, frames, input_scale=snapshot.input_scale, prior=prior)
    return predictor_of(snapshot.model, snapshot)


def synthetic_ood(run: RunDir, dataset: PoseDataset, scales: np.ndarray) -> dict:
    """Per partition: plain; each individual adapted on its own frames (AdaBN, and with a
    prior of as many source frames as target frames: half the stored statistics); and all
    of the partition's individuals pooled into one adaptation."""
    membership = run.membership()
    snapshot = read_snapshot(run.snapshot_path(run.snapshots()[-1]))
    plain = predictor_of(snapshot.model, snapshot)
    result = {}
    for partition in ("within", "ood"):
        rows = dataset.indices_of(membership[partition])
        groups = np.asarray(dataset.groups)[rows]
        before, after, half = [], [], []
        for group in dict.fromkeys(groups.tolist()):
            mine = rows[groups == group]
            before.append((scores(plain, dataset, mine, scales), len(mine)))
            frames = TargetFrames.open(dataset.root / "labeled-data" / group)
            own = adapted_predictor(run, frames)
            after.append((scores(own, dataset, mine, scales), len(mine)))
            mixed = adapted_predictor(run, frames, prior=len(frames))
            half.append((scores(mixed, dataset, mine, scales), len(mine)))
        images = (dataset.load_image(int(i)) for i in rows)
        result[partition] = {
            "before": pooled(before),
            "after": pooled(after),
            "after_prior": pooled(half),
            "after_pooled": scores(adapted_predictor(run, images), dataset, rows, scales),
        }
    return result


def corrupted(run: RunDir, copies: dict[str, Path], clean: PoseDataset, scales: np.ndarray) -> dict:
    """Per corruption: the corrupted test set before / after adapting on all of it (errors
    normalized by the clean benchmark's per-individual scales)."""
    snapshot = read_snapshot(run.snapshot_path(run.snapshots()[-1]))
    plain = predictor_of(snapshot.model, snapshot)
    result = {}
    for name, project in copies.items():
        dataset = load_project(project)
        rows = np.arange(len(dataset))
        own_scales = scales[clean.indices_of(dataset.images)]
        adapted = adapted_predictor(run, TargetFrames.open(project))
        result[name] = {
            "before": scores(plain, dataset, rows, own_scales),
            "after": scores(adapted, dataset, rows, own_scales),
        }
    return result


def table(rows: list[dict], columns: list[str]) -> str:
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "".join("| " + " | ".join(str(r[c]) for c in columns) + " |\n" for r in rows)


def fmt(before: float, after: float, lower_better: bool = True) -> str:
    better = after < before if lower_better else after > before
    return f"{before:.3f} -> {after:.3f} ({'better' if better else 'worse'})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/adapt-bench"))
    parser.add_argument("--backbones", default="mobilenetv2_035,mobilenetv2_100,efficientnet_lite2")
    parser.add_argument("--train-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    started = time.perf_counter()
    plan = bench_plan(args.work, args.backbones.split(","))
    study = run_study(plan, args.work / "study", show_progress=False)
    trained = time.perf_counter() - started
    print(f"trained/reused {len(study.done) + len(study.skipped)} runs in {trained:.0f} s")
    if args.train_only:
        return
    from poseshift.datasets.horse_c.build import make_corruptions

    dataset = load_project(plan.project)
    scales = image_scales(dataset)
    make_corruptions(
        plan.project,
        plan.split.name,
        args.work / "horse-c",
        corruptions=CORRUPTIONS,
        severities=[SEVERITY],
    )
    copies = {c: args.work / "horse-c" / c / str(SEVERITY) for c in CORRUPTIONS}
    results = {}
    for run_path in sorted((args.work / "study" / "runs").iterdir()):
        run = RunDir(run_path)
        if not run.is_finished():
            continue
        spec = run.spec()
        frozen = bool(spec.train.batchnorm.get("mobilenetv2") == "frozen")
        key = f"{spec.backbone}|{spec.init}|{'frozen' if frozen else 'train'}"
        results[key] = {
            "synthetic": synthetic_ood(run, dataset, scales),
            "corruptions": corrupted(run, copies, dataset, scales),
        }
        print(key, json.dumps(results[key]["synthetic"]), flush=True)
    seconds = time.perf_counter() - started
    (args.work / "adapt.json").write_text(json.dumps({"seconds": seconds, "runs": results}))
    report(results)
    print(f"total {seconds:.0f} s")


def report(results: dict) -> None:
    rows = []
    for key, r in results.items():
        backbone, init, bn = key.split("|")
        row = {"backbone": backbone, "init": init, "BatchNorm": bn}
        for part in ("ood", "within"):
            b, a = r["synthetic"][part]["before"], r["synthetic"][part]["after"]
            row[f"{part} NE"] = fmt(b["normalized_error"], a["normalized_error"])
            row[f"{part} PCK"] = fmt(b["pck"], a["pck"], lower_better=False)
        ood = r["synthetic"]["ood"]
        row["ood NE, prior"] = f"{ood['after_prior']['normalized_error']:.3f}"
        row["ood NE, pooled"] = f"{ood['after_pooled']['normalized_error']:.3f}"
        mean_b = np.mean([c["before"]["normalized_error"] for c in r["corruptions"].values()])
        mean_a = np.mean([c["after"]["normalized_error"] for c in r["corruptions"].values()])
        pck_b = np.mean([c["before"]["pck"] for c in r["corruptions"].values()])
        pck_a = np.mean([c["after"]["pck"] for c in r["corruptions"].values()])
        row["Horse-C NE"] = fmt(mean_b, mean_a)
        row["Horse-C PCK"] = fmt(pck_b, pck_a, lower_better=False)
        rows.append(row)
    columns = list(rows[0]) if rows else []
    print(table(rows, columns))
    per = []
    for key, r in results.items():
        for name, c in r["corruptions"].items():
            b, a = c["before"], c["after"]
            per.append(
                {
                    "run": key.replace("|", " "),
                    "corruption": name,
                    "NE": fmt(b["normalized_error"], a["normalized_error"]),
                    "PCK": fmt(b["pck"], a["pck"], lower_better=False),
                }
            )
    print(table(per, ["run", "corruption", "NE", "PCK"]))


if __name__ == "__main__":
    main()
