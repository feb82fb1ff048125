"""The learning-rate schedule of a recipe: DeepLabCut's steps per init kind, or cosine."""

from __future__ import annotations

import math

from poseshift.spec import TrainConfig


def learning_rate(config: TrainConfig, iteration: int, init: str) -> float:
    """Learning rate for an iteration (0-based); ``init`` picks the steps of its kind."""
    if config.lr_schedule == "cosine":
        if iteration < config.warmup_iters:
            return config.lr * (iteration + 1) / config.warmup_iters
        span = max(1, config.iterations - config.warmup_iters)
        progress = (iteration - config.warmup_iters) / span
        return 0.5 * config.lr * (1 + math.cos(math.pi * min(1.0, progress)))
    steps = config.lr_steps["scratch" if init == "scratch" else "imagenet"]
    for lr, until in steps:
        if iteration < until:
            return lr
    return steps[-1][0]
