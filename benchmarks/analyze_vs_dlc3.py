"""Video analysis speed of ``poseshift analyze`` against DeepLabCut 3.0.2's analyze_videos (CPU).

Same machine, same run, same clip: the first 300 frames of the openfield video
(640x480, cut with OpenCV), analyzed at full size by both (``--resize 640x480`` for
poseshift; DeepLabCut's bottom-up inference does not resize). ResNet-50 models trained by
``train_vs_dlc3.py`` (its accuracy runs: the poseshift run dir and the DeepLabCut 3 snapshot
in the same project copy), plus a briefly trained poseshift MobileNetV2-0.35.

1. Batch-size sweep (1, 4, 8) on the first ``--sweep-frames`` frames, interleaved:
   DeepLabCut, then poseshift ResNet-50 int8, bf16, fp32 (compiled, the CPU default) and
   fp32 uncompiled (``--no-compile``), and MobileNetV2-0.35 fp32 and bf16 (compiled). The
   headline pair (DeepLabCut, int8) runs back to back, so that the machine's drift over a
   round (minutes) moves both alike.
2. Each at its fastest batch size on the whole 300-frame clip, back to back, repeated
   ``--rounds`` times.
3. bf16 and int8 accuracy: of the keypoints the fp32 model finds with likelihood >= 0.6,
   the share whose bf16 (int8) prediction lies within 2 px.

frames/s = frames / ``run_duration`` from each tool's ``<video><scorer>_meta.pickle`` (video
decoding + inference + decoding poses, model loading excluded, for both tools; poseshift's
compilation happens before its clock starts, like model loading); the wall time of the
whole command (poseshift: process start, imports, model loading and compilation included;
DeepLabCut: the ``analyze_videos`` call) is recorded too.

    .venv/bin/python benchmarks/analyze_vs_dlc3.py --workdir /tmp/dlc3-bench
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from _common import (
    ENV,
    POSESHIFT,
    SHARED_PROJECT,
    dlc,
    load,
    log,
    machine,
    train_command,
    versions,
)

from poseshift.memory_policy import OFF_SWITCH

VIDEO = SHARED_PROJECT / "videos" / "m3v1mp4.mp4"


def cut_clip(source: Path, dest: Path, frames: int) -> Path:
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS)
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    written = 0
    while written < frames:
        ok, frame = capture.read()
        if not ok:
            break
        writer.write(frame)
        written += 1
    writer.release()
    capture.release()
    if written != frames:
        raise RuntimeError(f"{source} has only {written} frames")
    return dest


# name -> (precision, compiled, memory policy on); run in this order, int8 right after DeepLabCut
VARIANTS = {
    "resnet50": {
        "int8": ("int8", True, True),  # calibrated on the clip's first 32 frames (predict.int8)
        "bf16": ("bf16", True, True),
        "fp32": ("fp32", True, True),
        "fp32-eager": ("fp32", False, True),
        "int8-4k": ("int8", True, False),  # torch's and glibc's memory defaults
    },
    "mobilenetv2_035": {"fp32": ("fp32", True, True), "bf16": ("bf16", True, True)},
}


def poseshift_analyze(
    run: Path, video: Path, batch: int, variant: tuple[str, bool, bool], dest: Path
) -> dict:
    precision, compiled, memory_policy = variant
    dest.mkdir(parents=True, exist_ok=True)
    command = [
        str(POSESHIFT),
        "analyze",
        str(run),
        str(video),
        "--batch-size",
        str(batch),
        "--precision",
        precision,
        "--resize",
        "640x480",
        "--device",
        "cpu",
        "--dest",
        str(dest),
        "--overwrite",
        "--compile" if compiled else "--no-compile",
    ]
    load_before = load()
    started = time.perf_counter()
    env = ENV if memory_policy else {**ENV, OFF_SWITCH: "off"}
    out = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    meta_path = next(dest.glob(f"{video.stem}*_meta.pickle"))
    meta = pickle.loads(meta_path.read_bytes())["data"]
    return {
        "command": " ".join(command),
        "batch_size": batch,
        "precision": precision,
        "compiled": compiled,
        "memory_policy": memory_policy,
        "run_duration": meta["run_duration"],
        "nframes": meta["nframes"],
        "fps": meta["nframes"] / meta["run_duration"],
        "wall_s": wall,
        "h5": str(next(p for p in dest.glob(f"{video.stem}*.h5"))),
        "load_before": load_before,
        "load_after": load(),
    }


def dlc_analyze(project: Path, videos: list[Path], batches: list[int], dest: Path, tag: str):
    args = [
        "analyze",
        str(project),
        "--videos",
        *map(str, videos),
        "--batch-sizes",
        *map(str, batches),
        "--dest",
        str(dest),
    ]
    runs = dlc(*args, log_file=dest.parent / f"{tag}.log")["runs"]
    for run in runs:
        run["command"] = "dlc3_driver.py " + " ".join(args)
    return runs


def read_poses(h5: str) -> np.ndarray:
    """(N, K, 3) x, y, likelihood from a DeepLabCut-style h5 (either tool)."""
    table = pd.read_hdf(h5)
    values = table.to_numpy(dtype=np.float64)
    return values.reshape(len(table), -1, 3)


def bf16_check(fp32_h5: str, bf16_h5: str, cutoff: float = 0.6, tol: float = 2.0) -> dict:
    a, b = read_poses(fp32_h5), read_poses(bf16_h5)
    confident = a[..., 2] >= cutoff
    dist = np.linalg.norm(a[..., :2] - b[..., :2], axis=-1)
    within = (dist <= tol) & confident
    return {
        "keypoints": int(a.shape[0] * a.shape[1]),
        "confident_fp32": int(confident.sum()),
        "within_2px": int(within.sum()),
        "share": float(within.sum() / max(1, confident.sum())),
        "median_px": float(np.median(dist[confident])) if confident.any() else None,
        "max_px": float(dist[confident].max()) if confident.any() else None,
        "all_within_2px_share": float((dist <= tol).mean()),
        "mean_abs_likelihood_diff": float(np.abs(a[..., 2] - b[..., 2]).mean()),
    }


def train_mobilenet(project: Path, workdir: Path, iters: int) -> Path:
    """A briefly trained MobileNetV2-0.35 (speed does not depend on the weights)."""
    run = workdir / "mnv2-035"
    command = train_command(project, run, "mobilenetv2_035", "fast", iters, "256x256")
    subprocess.run(command, check=True, capture_output=True, env=ENV)
    return run


def best(runs: list[dict]) -> int:
    return max(runs, key=lambda r: r["fps"])["batch_size"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dlc3-bench"))
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--sweep-frames", type=int, default=60)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--mobilenet-iters", type=int, default=20)
    parser.add_argument(
        "--reuse-sweep",
        action="store_true",
        help="skip steps 1 and the MobileNet training: reuse analyze_sweep.json "
        "and mnv2-035 of an earlier run; write analyze_vs_dlc3-rerun.json",
    )
    args = parser.parse_args()
    work = args.workdir
    project = work / "openfield"
    resnet_run = work / "acc-poseshift"
    if not (resnet_run / "done.json").exists() or not list(
        project.glob("dlc-models-pytorch/*/*/train/snapshot-*.pt")
    ):
        raise SystemExit(f"run train_vs_dlc3.py --workdir {work} first (needs its trained models)")
    out = work / "analyze"
    out.mkdir(exist_ok=True)
    started = time.perf_counter()
    report = {
        "machine": machine(),
        "versions": versions(),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    clip = cut_clip(VIDEO, out / f"openfield{args.frames}.mp4", args.frames)
    sweep_clip = cut_clip(VIDEO, out / f"openfield{args.sweep_frames}.mp4", args.sweep_frames)
    if args.reuse_sweep:
        mobilenet_run = work / "mnv2-035"
    else:
        log("training MobileNetV2-0.35 briefly ...")
        mobilenet_run = train_mobilenet(project, work, args.mobilenet_iters)
    models = {"resnet50": resnet_run, "mobilenetv2_035": mobilenet_run}

    # 1. sweep
    keys = {f"{m}-{v}": (models[m], VARIANTS[m][v]) for m in models for v in VARIANTS[m]}
    sweep = {"dlc": [], **{key: [] for key in keys}}
    if args.reuse_sweep:
        sweep = json.loads((out / "analyze_sweep.json").read_text())
    for batch in [] if args.reuse_sweep else args.batch_sizes:
        log(f"sweep b={batch}: DeepLabCut ...")
        sweep["dlc"] += dlc_analyze(
            project, [sweep_clip], [batch], out / f"sweep-dlc-b{batch}", f"sweep-dlc-b{batch}"
        )
        for key, (run, variant) in keys.items():
            sweep[key].append(
                poseshift_analyze(run, sweep_clip, batch, variant, out / f"sweep-{key}-b{batch}")
            )
        log(f"sweep b={batch}: " + str({k: round(v[-1]["fps"], 2) for k, v in sweep.items()}))
        (out / "analyze_sweep.json").write_text(json.dumps(sweep, indent=1))
    report["sweep"] = sweep

    # 2. full clip at each one's best batch size
    final = {k: [] for k in sweep}
    tag = "-rerun" if args.reuse_sweep else ""
    for r in range(args.rounds):
        log(f"round {r}: full clip, DeepLabCut b={best(sweep['dlc'])} ...")
        final["dlc"] += dlc_analyze(
            project,
            [clip],
            [best(sweep["dlc"])],
            out / f"final{tag}-r{r}-dlc",
            f"final{tag}-r{r}-dlc",
        )
        for key, (run, variant) in keys.items():
            final[key].append(
                poseshift_analyze(
                    run, clip, best(sweep[key]), variant, out / f"final{tag}-r{r}-{key}"
                )
            )
        log(f"round {r}: " + str({k: round(v[-1]["fps"], 2) for k, v in final.items()}))
        (out / f"analyze_final{tag}.json").write_text(json.dumps(final, indent=1))
    report["final"] = final

    # 3. bf16 against fp32 (same model, same clip)
    report["bf16_check"] = {
        name: bf16_check(final[f"{name}-fp32"][0]["h5"], final[f"{name}-bf16"][0]["h5"])
        for name in models
    }
    report["int8_check"] = bf16_check(
        final["resnet50-fp32"][0]["h5"], final["resnet50-int8"][0]["h5"]
    )
    report["compiled_check"] = bf16_check(
        final["resnet50-fp32-eager"][0]["h5"], final["resnet50-fp32"][0]["h5"]
    )
    report["wall_s"] = time.perf_counter() - started
    report["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    (work / f"analyze_vs_dlc3{tag}.json").write_text(json.dumps(report, indent=1))
    log(f"done in {report['wall_s'] / 60:.1f} min; {work / f'analyze_vs_dlc3{tag}.json'}")


if __name__ == "__main__":
    main()
