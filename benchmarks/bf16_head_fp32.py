"""Does keeping the deconvolution head in fp32 fix the bf16 agreement? (evidence, src/ unchanged)

Runs a trained run's snapshot on a clip three ways through ``Predictor``: fp32, bf16
autocast as shipped, and bf16 autocast for the backbone only (head wrapped to run in fp32 on
float features). Reports, of the keypoints fp32 finds with likelihood >= 0.6, the share whose
prediction lies within 2 px.

    .venv/bin/python benchmarks/bf16_head_fp32.py RUN_DIR CLIP [--frames 300]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from poseshift.predict.predictor import run_predictor
from poseshift.predict.video import predict_video
from poseshift.run import RunDir


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("clip")
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    poses = {}
    for name in ("fp32", "bf16", "bf16-head-fp32"):
        run = RunDir(args.run)
        precision = "fp32" if name == "fp32" else "bf16"
        predictor = run_predictor(run, run.choose_snapshot(), device="cpu", precision=precision)
        if name == "bf16-head-fp32":
            head = predictor.model.head
            forward = head.forward

            def fp32_head(features, *skip, forward=forward):
                with torch.autocast("cpu", enabled=False):
                    return forward(features.float(), *(s.float() for s in skip))

            head.forward = fp32_head
        poses[name] = predict_video(
            predictor, args.clip, batch_size=1, resize=(640, 480), max_frames=args.frames
        ).poses
    ref = poses["fp32"]
    confident = ref[..., 2] >= 0.6
    for name in ("bf16", "bf16-head-fp32"):
        dist = np.linalg.norm(poses[name][..., :2] - ref[..., :2], axis=-1)[confident]
        print(
            f"{name:15s}: {confident.sum()} confident fp32 keypoints, "
            f"{(dist <= 2).mean():.2%} within 2 px, median {np.median(dist):.2f} px, "
            f"max {dist.max():.1f} px"
        )


if __name__ == "__main__":
    main()
