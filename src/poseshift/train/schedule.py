"""The learning-rate schedule of a recipe: DeepLabCut's steps per init kind, or cosine."""

from __future__ import annotations

import math

from poseshift.spec import TrainConfig


def learning_rate(config: TrainConfig, iteration: int, init: str) -> float:
    """Learning rate for an iteration (0-based); ``init`` picks the steps of its kind."""
    if config.lr_schedule == "cosine":
        if iteration < config.warmup_iters:
            return config.lr * (iteration + 1) / config.warmup_iters
        end = config.cosine_iters or config.iterations
        progress = (iteration - config.warmup_iters) / max(1, end - config.warmup_iters)
        decayed = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return config.lr * ((1 - config.lr_final) * decayed + config.lr_final)
    steps = config.lr_steps["scratch" if init == "scratch" else "imagenet"]
    for lr, until in steps:
        if iteration < until:
            return lr
    return steps[-1][0]
