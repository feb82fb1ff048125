"""Training speed (and short-run accuracy) of poseshift against DeepLabCut 3.0.2 on CPU.

Same machine, same run, same project (the shared openfield project, copied), same
train/test split (DeepLabCut's shuffle 1, saved for poseshift as split ``dlc3-shuffle1``),
ResNet-50 from scratch, batch 8, 448x448 crops (DeepLabCut 3's default), one data-loading
worker each. DeepLabCut 3 is installed into its own venv (/tmp/dlc3-venv) on first use.

Speed: per round, back to back: DeepLabCut 3 (its default ``resnet_50`` = timm
``resnet50_gn``), poseshift fp32, poseshift bf16 and, with ``--dlc-bn``, DeepLabCut 3 with
``model.backbone.model_name: resnet50`` (BatchNorm, the same network as poseshift's;
first round only).
poseshift's images/s come from RUN/log.jsonl (log_every 1; the first interval, which holds
the first step's warm-up, is skipped); DeepLabCut's from time stamps taken after every
optimizer step (first step skipped the same way). CPU-seconds per image (process user+sys
time, data-loading worker excluded for both) are recorded too: they are far less sensitive
to other jobs on the machine than wall-clock rates.

Accuracy (``--acc-epochs E``): both train the same number of epochs (E passes over the 110
training images) at ``--acc-crop``, then poseshift evaluate / DeepLabCut evaluate_network
score the test images of the shared split.

``--stride32`` adds poseshift bf16 with ``backbone_stride: 32`` (ResNet-50 undilated, a
learned upsampling joined by the stride-16 stage before the head) to every speed round and
to the accuracy part. ``poseshift train`` keeps freed memory in glibc's heap
(``poseshift.memory_policy``); ``--memory-defaults`` adds the bf16 arms again without it.

    .venv/bin/python benchmarks/train_vs_dlc3.py --workdir /tmp/dlc3-bench
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import subprocess
import time
from pathlib import Path

from _common import (
    ENV,
    POSESHIFT,
    dlc,
    ensure_dlc_venv,
    load,
    log,
    machine,
    prepare_project,
    proc_cpu_seconds,
    train_command,
    versions,
    write_preset,
)

from poseshift.memory_policy import OFF_SWITCH


def poseshift_train(
    project: Path, run: Path, preset: Path, iters: int, crop: str, logf: Path, env: dict = ENV
):
    """Run the CLI; sample the process CPU time whenever a log.jsonl line appears."""
    command = train_command(project, run, "resnet50", str(preset), iters, crop)
    load_before = load()
    with logf.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        samples, seen = [], 0
        while proc.poll() is None:
            path = run / "log.jsonl"
            lines = path.read_text().count("\n") if path.exists() else 0
            if lines > seen:
                try:
                    samples.append((lines, time.perf_counter(), proc_cpu_seconds(proc.pid)))
                except (FileNotFoundError, ProcessLookupError):
                    break
                seen = lines
            time.sleep(0.05)
    if proc.wait() != 0:
        raise RuntimeError(f"{' '.join(command)} failed; see {logf}")
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    kept = records[1:]  # first interval = first step, warm-up included
    seconds = sum(
        8 * (r["iteration"] - p["iteration"]) / r["images_per_s"]
        for p, r in zip(records, kept, strict=False)
    )
    images = 8 * (kept[-1]["iteration"] - records[0]["iteration"])
    cpu = None
    if len(samples) >= 2 and samples[0][0] == 1 and samples[-1][0] == len(records):
        cpu = (samples[-1][2] - samples[0][2]) / images
    return {
        "tool": "poseshift",
        "command": " ".join(command),
        "images_per_s": images / seconds,
        "per_interval": [r["images_per_s"] for r in kept],
        "cpu_s_per_image": cpu,
        "measured_steps": len(kept),
        "load_before": load_before,
        "load_after": load(),
    }


def dlc_train_args(project: Path, crop: tuple[int, int], epochs: int, model_name: str) -> list:
    """dlc3_driver.py train: batch 8, one loader worker, as poseshift gets."""
    return [
        "train",
        str(project),
        "--crop",
        str(crop[0]),
        str(crop[1]),
        "--batch-size",
        "8",
        "--epochs",
        str(epochs),
        "--workers",
        "1",
        "--model-name",
        model_name,
    ]


def dlc_train(project: Path, steps: int, model_name: str, crop: tuple[int, int], logf: Path):
    load_before = load()
    args = [*dlc_train_args(project, crop, 1, model_name), "--max-steps", str(steps)]
    out = dlc(*args, log_file=logf)
    stamps = out["stamps"]  # [(wall, cpu)] after each optimizer step
    wall = [s[0] for s in stamps]
    cpu = [s[1] for s in stamps]
    images = 8 * (len(stamps) - 1)
    return {
        "tool": f"deeplabcut ({model_name})",
        "command": "dlc3_driver.py " + " ".join(args),
        "images_per_s": images / (wall[-1] - wall[0]),
        "per_interval": [round(8 / (b - a), 3) for a, b in itertools.pairwise(wall)],
        "cpu_s_per_image": (cpu[-1] - cpu[0]) / images,
        "measured_steps": len(stamps) - 1,
        "load_before": load_before,
        "load_after": load(),
    }


# poseshift's speed arms: the ``fast`` preset's keys each one replaces.
VARIANTS = {
    "fp32": {"precision": "fp32"},
    "bf16": {"precision": "bf16"},
    "bf16-stride32": {"precision": "bf16", "backbone_stride": 32},
}
# ``--memory-defaults``: these arms again under torch's and glibc's memory defaults.
MEMORY_DEFAULTS = "-memory-defaults"


def speed(args, project: Path, workdir: Path) -> list[dict]:
    presets = {
        name: write_preset(
            workdir / f"fast-{name}.yaml",
            **keys,
            log_every=1,
            checkpoint_every=100_000,
            snapshots=[],
        )
        for name, keys in VARIANTS.items()
    }
    crop = f"{args.crop[0]}x{args.crop[1]}"
    results = []
    for r in range(args.rounds):
        variants = ["fp32", "bf16", *(["bf16-stride32"] if args.stride32 else [])]
        if args.memory_defaults:
            variants += [v + MEMORY_DEFAULTS for v in variants if v != "fp32"]
        runs = [("dlc", "resnet50_gn"), *(("poseshift", v) for v in variants)]
        if args.dlc_bn and r == 0:  # once: a reference for the network difference only
            runs.append(("dlc", "resnet50"))
        for tool, variant in runs:
            tag = f"speed-r{r}-{tool}-{variant}"
            log(f"{tag} ...")
            if tool == "dlc":
                res = dlc_train(project, args.steps, variant, args.crop, workdir / f"{tag}.log")
            else:
                memory_defaults = variant.endswith(MEMORY_DEFAULTS)
                res = poseshift_train(
                    project,
                    workdir / tag,
                    presets[variant.removesuffix(MEMORY_DEFAULTS)],
                    args.steps,
                    crop,
                    workdir / f"{tag}.log",
                    env={**ENV, OFF_SWITCH: "off"} if memory_defaults else ENV,
                )
                res["tool"] = f"poseshift (resnet50, {variant})"
            res["round"] = r
            results.append(res)
            log(
                f"{tag}: {res['images_per_s']:.3f} images/s, "
                f"{res['cpu_s_per_image'] or float('nan'):.2f} CPU-s/image"
            )
            (workdir / "train_speed.json").write_text(json.dumps(results, indent=1))
    return results


def accuracy(args, project: Path, workdir: Path, n_train: int) -> dict:
    epochs = args.acc_epochs
    iters = math.ceil(epochs * n_train / 8)  # poseshift: 8 images per iteration
    crop = args.acc_crop
    log(f"accuracy: DeepLabCut 3, {epochs} epochs at {crop[0]}x{crop[1]} ...")
    t = time.perf_counter()
    dlc(
        *dlc_train_args(project, crop, epochs, "resnet50_gn"),
        log_file=workdir / "acc-dlc-train.log",
    )
    dlc_seconds = time.perf_counter() - t
    dlc_eval = dlc("evaluate", str(project), log_file=workdir / "acc-dlc-eval.log")
    result = {
        "epochs": epochs,
        "crop": crop,
        "poseshift_iterations": iters,
        "dlc_train_wall_s": dlc_seconds,
        "dlc": dlc_eval,
    }
    arms = {"poseshift": {}, "poseshift_stride32": {"backbone_stride": 32}}
    for name, keys in itertools.islice(arms.items(), 2 if args.stride32 else 1):
        result[name] = poseshift_accuracy(project, workdir / f"acc-{name}", iters, crop, keys)
    return result


def poseshift_accuracy(
    project: Path, run: Path, iters: int, crop: tuple[int, int], keys: dict
) -> dict:
    """Train the bf16 ``fast`` recipe (with ``keys``) for ``iters`` and evaluate it."""
    preset = write_preset(
        run.with_name(f"{run.name}.yaml"),
        precision="bf16",
        warmup_iters=max(1, iters // 10),
        log_every=5,
        checkpoint_every=100_000,
        snapshots=[],
        **keys,
    )
    log(f"accuracy: {run.name}, {iters} iterations ...")
    t = time.perf_counter()
    poseshift_train(
        project, run, preset, iters, f"{crop[0]}x{crop[1]}", run.with_name(f"{run.name}.log")
    )
    seconds = time.perf_counter() - t
    command = [str(POSESHIFT), "evaluate", str(run), "--scale-pair", "snout,tailbase"]
    out = subprocess.run(command, capture_output=True, text=True, env=ENV)
    run.with_name(f"{run.name}-eval.log").write_text(out.stdout + out.stderr)
    metrics = json.loads(next((run / "eval").glob("snapshot-*/metrics.json")).read_text())
    return {
        "train_wall_s": seconds,
        "partitions": metrics["partitions"],
        "command": " ".join(command),
        "run": str(run),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dlc3-bench"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="optimizer steps per speed run")
    parser.add_argument("--crop", type=int, nargs=2, default=(448, 448))
    parser.add_argument("--dlc-bn", action="store_true", help="also DLC3 with BatchNorm ResNet-50")
    parser.add_argument("--acc-epochs", type=int, default=4, help="0: skip the accuracy part")
    parser.add_argument("--acc-crop", type=int, nargs=2, default=(224, 224))
    parser.add_argument("--stride32", action="store_true", help="also backbone_stride 32")
    parser.add_argument(
        "--memory-defaults",
        action="store_true",
        help="also the bf16 arms under glibc's memory defaults (POSESHIFT_MEMORY_POLICY=off)",
    )
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    ensure_dlc_venv()
    report = {
        "machine": machine(),
        "versions": versions(),
        "args": vars(args) | {"workdir": str(args.workdir)},
    }
    log(f"machine {report['machine']}")
    project, split = prepare_project(args.workdir)
    report["split"] = {"train": len(split["train"]), "test": split["test"]}
    report["speed"] = speed(args, project, args.workdir)
    if args.acc_epochs:
        report["accuracy"] = accuracy(args, project, args.workdir, len(split["train"]))
    report["wall_s"] = time.perf_counter() - started
    report["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    (args.workdir / "train_vs_dlc3.json").write_text(json.dumps(report, indent=1))
    log(f"done in {report['wall_s'] / 60:.1f} min; {args.workdir / 'train_vs_dlc3.json'}")


if __name__ == "__main__":
    main()
