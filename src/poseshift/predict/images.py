"""Batched inference on labeled images (evaluation), decoded on the device."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

from poseshift.data.augment import rescale
from poseshift.data.project import PoseDataset
from poseshift.models.codec import ScoremapCodec


@torch.inference_mode()
def predict_images(
    model: torch.nn.Module,
    dataset: PoseDataset,
    indices: Sequence[int],
    codec: ScoremapCodec,
    scale: float = 1.0,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """(len(indices), K, 3) predictions x, y, confidence in original image pixels.

    Images are resized by ``scale`` (the training ``global_scale``) and batched by size.
    """
    device = torch.device(device)
    model.eval().to(device)
    out = np.full((len(indices), len(dataset.bodyparts), 3), np.nan, dtype=np.float32)
    by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
    for row, index in enumerate(indices):
        by_size[tuple(dataset.image_sizes[index])].append(row)
    for rows in by_size.values():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            images = [rescale(dataset.load_image(indices[r]), scale) for r in chunk]
            width, height = dataset.image_sizes[indices[chunk[0]]]
            factor = (width / images[0].shape[1], height / images[0].shape[0])
            batch = torch.from_numpy(np.stack(images)).to(device).permute(0, 3, 1, 2)
            outputs = model(model.normalize(batch))
            poses = codec.decode(outputs["scoremaps"], outputs["locref"], scale=factor)
            out[chunk] = poses.float().cpu().numpy()
    return out
