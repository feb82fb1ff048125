"""Do bf16 video predictions agree with fp32? And how stable is fp32 itself?

For every frame of a clip (resized by the run's global_scale, as ``poseshift analyze`` does)
the run's snapshot predicts poses three ways: fp32, bf16 autocast, and fp32 on the frame
with +-1 gray level of random noise (a perturbation far smaller than video compression
noise). Of the keypoints the clean fp32 prediction finds with likelihood >= 0.6, the script
prints the share that stays within 2 px of it, for bf16 and for the noisy fp32 baseline.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/video_bf16_agreement.py RUN_DIR VIDEO
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch

from poseshift.predict.frames import FrameBatches, probe_video
from poseshift.predict.predictor import Predictor, run_predictor
from poseshift.run import RunDir


def agreement(reference: np.ndarray, other: np.ndarray, cutoff: float, tol: float) -> str:
    confident = reference[..., 2] >= cutoff
    dist = np.linalg.norm(reference[..., :2] - other[..., :2], axis=-1)[confident]
    if not confident.any():
        return f"no keypoint reaches likelihood {cutoff}"
    return (
        f"{100 * (dist <= tol).mean():6.2f} % of {confident.sum()} within {tol:g} px "
        f"(median {np.median(dist):.2f} px, 95th pct {np.quantile(dist, 0.95):.1f} px)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("video")
    parser.add_argument("--snapshot", default="last")
    parser.add_argument("--cutoff", type=float, default=0.6)
    parser.add_argument("--tol", type=float, default=2.0)
    args = parser.parse_args()
    run = RunDir(args.run_dir)
    iteration = run.choose_snapshot(args.snapshot)
    fp32 = run_predictor(run, iteration, device="cpu", precision="fp32")
    bf16 = Predictor(copy.deepcopy(fp32.model), fp32.codec, device="cpu", precision="bf16")
    info = probe_video(args.video)
    size = fp32.input_size(info.width, info.height)
    scale = torch.tensor([info.width / size[0], info.height / size[1]])
    rng = torch.Generator().manual_seed(0)
    poses = {"fp32": [], "bf16": [], "noisy": []}
    for frames in FrameBatches(args.video, 8, size):
        noise = torch.randint(-1, 2, frames.shape, generator=rng, dtype=torch.int16)
        noisy = (frames.to(torch.int16) + noise).clamp(0, 255).to(torch.uint8)
        poses["fp32"].append(fp32.predict_batch(frames, scale))
        poses["bf16"].append(bf16.predict_batch(frames, scale))
        poses["noisy"].append(fp32.predict_batch(noisy, scale))
    result = {k: torch.cat(v).numpy() for k, v in poses.items()}
    reference = result["fp32"]
    print(f"{args.run_dir} snapshot {iteration}, {args.video}: {len(reference)} frames")
    print(f"  likelihood quantiles 10/50/90 %: {np.quantile(reference[..., 2], [0.1, 0.5, 0.9])}")
    for label, key in (("bf16 vs fp32", "bf16"), ("fp32 +-1 gray level vs fp32", "noisy")):
        print(f"  {label:28s} {agreement(reference, result[key], args.cutoff, args.tol)}")


if __name__ == "__main__":
    main()
