"""Are the frames ``poseshift outliers`` picks really the wrong ones? Measured where every frame
has ground truth.

For the runs trained by ``benchmarks/adapt.py`` (same ``--work``): new out-of-domain
individuals of the synthetic benchmark (indices 100.., never seen by any split) rendered as
dense walks (``--frames`` frames each, 128x80) and written as mp4 videos; each video analyzed
and scored through the product path (``analyze_videos`` + ``write_reliability``). Then per
video and run, the mean true normalized error (pixel error / the individual's median
Nose-Eye distance) of ``--n`` frames picked by

* ``poseshift outliers`` (``pick_frames`` on ``unreliability``, its default gap);
* random picks (the expectation: the mean over all frames; and the 10th-90th percentile of
  the picks' mean over 2000 draws);
* DeepLabCut's likelihood-only rule (``extract_outlier_frames(outlieralgorithm="uncertain",
  p_bound=0.01)``: the frames where a bodypart's likelihood is below p_bound, then n of them
  spread uniformly; when fewer, all of them), and its natural variant, the n frames of
  lowest mean likelihood;

and the Spearman correlation of each signal with the per-frame true error.

    PYTHONPATH=src .venv/bin/python benchmarks/outlier_picks.py --work /tmp/adapt-bench
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from poseshift.data.hdf import read_hdf_safely
from poseshift.data.project import HDF_KEY
from poseshift.datasets.synthetic.generate import render_individual
from poseshift.datasets.synthetic.horse import BODYPARTS
from poseshift.predict.outliers import pick_frames
from poseshift.predict.predictor import run_predictor
from poseshift.predict.reliability import read_reliability, write_reliability
from poseshift.predict.video import analyze_videos
from poseshift.run import RunDir

SIGNALS = {  # signal -> sign that makes "higher = less reliable"
    "unreliability": 1,
    "rescale_px": 1,
    "jump_px": 1,
    "likelihood_mean": -1,
    "likelihood_min": -1,
}


def write_individual(path: Path, index: int, frames: int) -> np.ndarray:
    """An mp4 of individual ``index`` walking; returns its keypoints (N, K, 2)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (128, 80))
    points = []
    for image, keypoints in render_individual(0, index, frames, (128, 80), 1.0):
        writer.write(np.ascontiguousarray(image[..., ::-1]))
        points.append(keypoints)
    writer.release()
    return np.stack(points)


def true_errors(poses: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N,) mean normalized error per frame (NaN keypoints left out)."""
    nose, eye = BODYPARTS.index("Nose"), BODYPARTS.index("Eye")
    scale = np.nanmedian(np.linalg.norm(truth[:, nose] - truth[:, eye], axis=-1))
    errors = np.linalg.norm(poses[..., :2] - truth, axis=-1) / scale
    return np.nanmean(errors, axis=1)


def dlc_uncertain(likelihood: np.ndarray, n: int, p_bound: float = 0.01) -> list[int]:
    """DeepLabCut's "uncertain" candidates, then n spread uniformly over them."""
    candidates = np.flatnonzero((likelihood < p_bound).any(axis=1))
    if len(candidates) <= n:
        return candidates.tolist()
    return candidates[np.linspace(0, len(candidates) - 1, n).round().astype(int)].tolist()


def measure(run: RunDir, videos: dict[Path, np.ndarray], n: int, out: Path) -> dict:
    iteration = run.snapshots()[-1]
    predictor = run_predictor(run, iteration, device="cpu", compile=False)
    rng = np.random.default_rng(0)
    rows, correlations = [], []
    for video, truth in videos.items():
        [h5] = analyze_videos(
            run.path, [video], dest=out, show_progress=False, compile=False, device="cpu"
        )
        write_reliability(predictor, video, h5)
        table = read_reliability(h5)
        poses = read_hdf_safely(h5, HDF_KEY).to_numpy().reshape(len(table), -1, 3)
        error = true_errors(poses, truth[: len(poses)])
        ours = pick_frames(table["unreliability"].to_numpy(), n, max(1, len(error) // (5 * n)))
        lowest = np.argsort(table["likelihood_mean"].to_numpy())[:n].tolist()
        uncertain = dlc_uncertain(poses[..., 2], n)
        draws = np.array(
            [error[rng.choice(len(error), n, replace=False)].mean() for _ in range(2000)]
        )
        rows.append(
            {
                "ours": float(error[ours].mean()),
                "random": float(error.mean()),
                "random_p10": float(np.percentile(draws, 10)),
                "random_p90": float(np.percentile(draws, 90)),
                "dlc_uncertain": float(error[uncertain].mean()) if uncertain else float("nan"),
                "dlc_uncertain_picks": len(uncertain),
                "lowest_likelihood": float(error[lowest].mean()),
            }
        )
        frame = pd.DataFrame({"error": error})
        for name, sign in SIGNALS.items():
            frame[name] = sign * table[name].to_numpy()
        correlations.append(frame.corr(method="spearman")["error"].drop("error").to_dict())
    return {
        "picks": pd.DataFrame(rows).mean().to_dict(),
        "spearman": pd.DataFrame(correlations).mean().to_dict(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/adapt-bench"))
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--n", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(2)
    started = time.perf_counter()
    folder = args.work / "outlier-videos"
    folder.mkdir(parents=True, exist_ok=True)
    videos = {
        folder / f"horse{100 + i}.mp4": write_individual(
            folder / f"horse{100 + i}.mp4", 100 + i, args.frames
        )
        for i in range(args.videos)
    }
    results = {}
    for run_path in sorted((args.work / "study" / "runs").iterdir()):
        run = RunDir(run_path)
        spec = run.spec()
        if not run.is_finished() or spec.train.batchnorm:
            continue  # the frozen-BatchNorm twins are for the adaptation benchmark only
        key = f"{spec.backbone} {spec.init}"
        results[key] = measure(run, videos, args.n, args.work / "outlier-analysis" / key)
        print(key, json.dumps(results[key]), flush=True)
    seconds = time.perf_counter() - started
    (args.work / "outlier_picks.json").write_text(json.dumps({"seconds": seconds, **results}))
    print("| run | ours | random (p10-p90) | DLC uncertain (picks) | lowest likelihood |")
    print("|---|---|---|---|---|")
    for key, r in results.items():
        p = r["picks"]
        print(
            f"| {key} | {p['ours']:.3f} | {p['random']:.3f} ({p['random_p10']:.3f}-"
            f"{p['random_p90']:.3f}) | {p['dlc_uncertain']:.3f} ({p['dlc_uncertain_picks']:.1f})"
            f" | {p['lowest_likelihood']:.3f} |"
        )
    print("\n| run | " + " | ".join(SIGNALS) + " |\n|---|" + "---|" * len(SIGNALS))
    for key, r in results.items():
        print(f"| {key} | " + " | ".join(f"{r['spearman'][s]:+.2f}" for s in SIGNALS) + " |")
    print(f"total {seconds:.0f} s")


if __name__ == "__main__":
    main()
