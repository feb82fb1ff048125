"""Batches for training: a deterministic, resumable stream of augmented samples.

Sample number ``n`` of a run is always the same image with the same augmentation (its
epoch's seeded permutation picks the image, a generator seeded by ``(seed, n)`` drives the
augmentation), so a resumed run sees exactly the batches an uninterrupted one would, with
any number of workers; and data-parallel ranks, each taking its slice of every global batch,
together see exactly the batches one process would.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from poseshift.data.augment import Augmenter
from poseshift.data.project import PoseDataset


class ImageStore:
    """Decoded images, optionally kept in memory (small datasets: decode once)."""

    def __init__(
        self, dataset: PoseDataset, indices: Sequence[int] | np.ndarray, cache: bool
    ) -> None:
        self.dataset = dataset
        self.cache = {i: dataset.load_image(i) for i in indices} if cache else None

    def __getitem__(self, index: int) -> np.ndarray:
        if self.cache is not None:
            return self.cache[index]
        return self.dataset.load_image(index)


class TrainingStream(Dataset):
    """Maps a global sample number to an augmented (image uint8 HWC, keypoints, scale)."""

    def __init__(
        self,
        dataset: PoseDataset,
        indices: Sequence[int] | np.ndarray,
        augment: Augmenter,
        seed: int,
        cache: bool = True,
    ) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices)
        self.augment = augment
        self.seed = seed
        self.images = ImageStore(dataset, self.indices.tolist(), cache)
        self._order: tuple[int, np.ndarray] | None = None

    def image_index(self, sample: int) -> int:
        epoch, position = divmod(sample, len(self.indices))
        if self._order is None or self._order[0] != epoch:
            self._order = (
                epoch,
                np.random.default_rng([self.seed, epoch]).permutation(self.indices),
            )
        return int(self._order[1][position])

    def __len__(self) -> int:  # the stream is unbounded; the sampler decides how far to go
        return 2**62

    def __getitem__(self, sample: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        index = self.image_index(sample)
        rng = np.random.default_rng([self.seed, 1_000_003, sample])
        out = self.augment(self.images[index], self.dataset.keypoints[index], rng)
        image = torch.from_numpy(np.ascontiguousarray(out.image))
        return image, torch.from_numpy(out.keypoints), torch.tensor(out.scale)


class RangeSampler(Sampler[int]):
    """This rank's sample numbers for iterations ``start .. stop-1`` of a global batch size.

    Global batch ``it`` is samples ``it*B .. it*B+B-1``; rank ``r`` of ``W`` takes
    ``it*B + r*B/W .. it*B + (r+1)*B/W - 1``. Resuming starts where the checkpoint left off.
    """

    def __init__(
        self, start: int, stop: int, batch_size: int, rank: int = 0, world: int = 1
    ) -> None:
        if batch_size % world:
            raise ValueError(f"batch size {batch_size} does not split over {world} ranks")
        self.start, self.stop, self.batch_size = start, stop, batch_size
        self.per_rank = batch_size // world
        self.offset = rank * self.per_rank

    def __iter__(self):
        for iteration in range(self.start, self.stop):
            first = iteration * self.batch_size + self.offset
            yield from range(first, first + self.per_rank)

    def __len__(self) -> int:
        return (self.stop - self.start) * self.per_rank


def training_loader(
    stream: TrainingStream,
    batch_size: int,
    *,
    start_iteration: int,
    iterations: int,
    num_workers: int,
    pin_memory: bool,
    rank: int = 0,
    world: int = 1,
) -> DataLoader:
    """Batches of ``batch_size / world`` samples: this rank's slice of each global batch."""
    sampler = RangeSampler(start_iteration, iterations, batch_size, rank, world)
    return DataLoader(
        stream,
        batch_size=sampler.per_rank,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=False,
        persistent_workers=False,
        prefetch_factor=4 if num_workers else None,
        collate_fn=pad_collate,
        worker_init_fn=_ignore_ctrl_c,
    )


def pad_images(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, h, w, C) images padded with black on the right and bottom to (height, width): the
    keypoints, in top-left-anchored pixels, need no change."""
    return F.pad(images, (0, 0, 0, width - images.shape[2], 0, height - images.shape[1]))


def pad_collate(
    samples: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack samples into (images, keypoints, scales); images of different sizes (``canvas:
    per_image`` in batches > 1) padded to the batch's largest (``pad_images``)."""
    images, keypoints, scales = zip(*samples, strict=True)
    height = max(image.shape[0] for image in images)
    width = max(image.shape[1] for image in images)
    padded = [pad_images(image[None], height, width)[0] for image in images]
    return torch.stack(padded), torch.stack(keypoints), torch.stack(scales)


def _ignore_ctrl_c(_worker_id: int) -> None:
    """A terminal's Ctrl-C reaches the workers too; the trainer alone decides when to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
