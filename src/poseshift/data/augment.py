"""Training augmentation (albumentations) that keeps keypoints on the pixels they mark.

DeepLabCut's defaults: the image is scaled by ``global_scale`` times a random jitter, rotated
now and then, motion-blurred, and cropped or padded to the training size; an optional
left-right flip swaps symmetric bodyparts. Crops are keypoint-aware as in DeepLabCut 3: half of
them (``hybrid``) are placed around a labeled keypoint, because on large frames a uniform crop
often holds no animal at all and gives a batch without positive targets. Unlabeled keypoints
stay NaN, and keypoints pushed out of the crop get a far-away position (trained as absent).
"""

from __future__ import annotations

from collections.abc import Sequence

import albumentations as A
import cv2
import numpy as np

from poseshift.errors import PoseshiftError
from poseshift.spec import AugmentConfig


def flip_permutation(bodyparts: Sequence[str], pairs: Sequence[Sequence[str]]) -> np.ndarray:
    """Index map that swaps each symmetric pair (left <-> right) after a horizontal flip."""
    order = list(range(len(bodyparts)))
    for pair in pairs:
        if len(pair) != 2 or any(name not in bodyparts for name in pair):
            raise PoseshiftError(
                f"augment.symmetric_pairs: {list(pair)} must be two of the bodyparts "
                f"{list(bodyparts)}"
            )
        a, b = (bodyparts.index(name) for name in pair)
        order[a], order[b] = b, a
    return np.array(order)


ABSENT = -1e4  # position of a labeled keypoint that left the crop


class Augmenter:
    """Callable ``(image, keypoints, rng) -> (image, keypoints)`` at a fixed output size."""

    def __init__(
        self, config: AugmentConfig, size: tuple[int, int], bodyparts: Sequence[str]
    ) -> None:
        width, height = size
        low, high = config.scale_jitter
        self.config = config
        self.size = size
        self.flip_order = flip_permutation(bodyparts, config.symmetric_pairs)
        if not 0.0 <= config.crop_max_shift <= 0.5:
            raise PoseshiftError(
                f"augment.crop_max_shift: {config.crop_max_shift} must be between 0 and 0.5"
            )
        self.geometry = A.Compose(
            [
                A.Affine(
                    scale=(config.global_scale * low, config.global_scale * high),
                    border_mode=cv2.BORDER_CONSTANT,
                    fill=0,
                    p=1.0,
                ),
                A.Affine(
                    rotate=(-config.rotation, config.rotation),
                    p=config.rotation_p,
                    border_mode=cv2.BORDER_CONSTANT,
                    fill=0,
                ),
                A.PadIfNeeded(
                    min_height=height, min_width=width, border_mode=cv2.BORDER_CONSTANT, fill=0
                ),
            ],
            keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
            seed=0,
        )
        self.photometric = A.Compose(
            [
                A.MotionBlur(blur_limit=7, p=config.motion_blur_p),
                A.RandomBrightnessContrast(p=config.brightness_contrast_p),
            ],
            seed=0,
        )

    def __call__(
        self, image: np.ndarray, keypoints: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        labeled = ~np.isnan(keypoints[:, 0])
        points = np.where(labeled[:, None], keypoints, 0.0)
        if self.config.fliplr and rng.random() < 0.5:
            image = np.ascontiguousarray(image[:, ::-1])
            points = points.copy()
            points[:, 0] = image.shape[1] - 1 - points[:, 0]
            points, labeled = points[self.flip_order], labeled[self.flip_order]
        # One generator per sample makes augmentation reproducible and resumable.
        self.geometry.set_random_seed(int(rng.integers(2**31)))
        self.photometric.set_random_seed(int(rng.integers(2**31)))
        out = self.geometry(image=image, keypoints=points)
        moved = np.asarray(out["keypoints"], dtype=np.float32).reshape(-1, 2)
        left, top = self._crop_origin(out["image"].shape, moved, labeled, rng)
        width, height = self.size
        cropped = out["image"][top : top + height, left : left + width]
        moved = moved - np.array([left, top], np.float32)
        inside = (moved[:, 0] >= 0) & (moved[:, 1] >= 0)
        inside &= (moved[:, 0] <= width - 1) & (moved[:, 1] <= height - 1)
        # A labeled keypoint pushed out of the crop is "absent here", not "unlabeled": it gets
        # a far-away position so its scoremap is trained to zero (as in DeepLabCut), while
        # keypoints never labeled stay NaN and contribute nothing.
        moved[labeled & ~inside] = ABSENT
        moved[~labeled] = np.nan
        return self.photometric(image=cropped)["image"], moved

    def _crop_origin(
        self,
        shape: tuple[int, ...],
        points: np.ndarray,
        labeled: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[int, int]:
        """Top-left corner of the crop in the (padded) transformed image."""
        width, height = self.size
        room = np.array([shape[1] - width, shape[0] - height])
        on_image = labeled & (points >= 0).all(axis=1) & (points < shape[1::-1]).all(axis=1)
        sampling = self.config.crop_sampling
        if sampling == "hybrid":
            sampling = "uniform" if rng.random() < 0.5 else "keypoints"
        if sampling == "uniform" or not on_image.any():
            origin = rng.random(2) * (room + 1)
        else:
            centre = points[rng.choice(np.flatnonzero(on_image))]
            # The keypoint lands anywhere in the central part of the crop, not always mid-crop.
            shift = self.config.crop_max_shift
            where = rng.uniform(0.5 - shift, 0.5 + shift, 2) * (width, height)
            origin = centre - where
        left, top = np.clip(np.floor(origin), 0, room).astype(int)
        return int(left), int(top)
