"""Training augmentation (albumentations) that keeps keypoints on the pixels they mark.

DeepLabCut's defaults: the image is scaled by ``global_scale`` times a random jitter (the same
factor for both axes), rotated now and then, motion-blurred, and cropped or padded to a
fixed training canvas, or (batch 1, ``canvas: per_image``) kept at its own scaled size as
DeepLabCut-TF trained; an optional left-right flip swaps symmetric bodyparts. DeepLabCut 2.2's
``imgaug`` pipeline also crops or pads each side by up to 15 %, warps elastically and drops
coarse pixel blocks (``crop_pad_p``, ``elastic_p``, ``covering_p``; off unless asked). Crops
are keypoint-aware as in DeepLabCut 3: half of them (``hybrid``) are placed around a labeled
keypoint, because on large frames a uniform crop often holds no animal at all and gives a
batch without positive targets. Unlabeled keypoints stay NaN, and keypoints pushed out of the
crop get a far-away position (trained as absent).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import albumentations as A
import cv2
import numpy as np

from poseshift.data.images import resize_frame
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


class Sample(NamedTuple):
    image: np.ndarray  # (H, W, 3) uint8: the canvas, or the scaled image padded to the stride
    keypoints: np.ndarray  # (K, 2) float32 in its pixels; NaN unlabeled, ABSENT out of crop
    scale: float  # the size factor applied (global_scale x jitter): original -> input pixels


class ElasticTransformation(A.ElasticTransform):
    """imgaug's ``ElasticTransformation(alpha=(0, 40), sigma)``: alpha drawn per image."""

    def __init__(self, alpha_range: tuple[float, float], sigma: float, p: float) -> None:
        super().__init__(
            alpha=alpha_range[1],
            sigma=sigma,
            noise_distribution="uniform",
            keypoint_remapping_method="direct",
            border_mode=cv2.BORDER_CONSTANT,
            p=p,
        )
        self.alpha_range = alpha_range

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        # The parent reads self.alpha here; drawn per call, as imgaug draws it per image.
        self.alpha = float(self.random_generator.uniform(*self.alpha_range))
        return super().get_params_dependent_on_data(params, data)


class CoarseDropout(A.ImageOnlyTransform):
    """imgaug's ``CoarseDropout(p, size_percent, per_channel)``: pixels dropped on a grid at
    ``size_percent`` of the image's resolution, upscaled to blocks; per channel sometimes."""

    def __init__(
        self,
        p_drop: float = 0.02,
        size_percent: float = 0.3,
        per_channel: float = 0.5,
        p: float = 0.5,
    ) -> None:
        super().__init__(p=p)
        self.p_drop, self.size_percent, self.per_channel = p_drop, size_percent, per_channel

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        height, width = params["shape"][:2]
        grid = (max(1, round(height * self.size_percent)), max(1, round(width * self.size_percent)))
        rng = self.random_generator
        planes = 3 if rng.random() < self.per_channel else 1
        keep = (rng.random((*grid, planes)) >= self.p_drop).astype(np.uint8)
        mask = cv2.resize(keep, (width, height), interpolation=cv2.INTER_NEAREST)
        return {"keep": mask.reshape(height, width, -1)}

    def apply(self, img: np.ndarray, keep: np.ndarray, **params: Any) -> np.ndarray:
        return img * keep


def _within(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Which (x, y) points lie on an image of ``shape`` (H, W, ...)."""
    height, width = shape[:2]
    return (points >= 0).all(axis=1) & (points[:, 0] <= width - 1) & (points[:, 1] <= height - 1)


class Augmenter:
    """Callable ``(image, keypoints, rng) -> Sample``.

    ``size`` (W, H) is a fixed canvas: every sample is padded or cropped to it. ``size=None``
    (``augment.canvas: per_image``, batch 1): each image keeps its own scaled size, as in
    DeepLabCut-TF, padded with black on the right and bottom to a multiple of ``stride`` only
    (as the predictor pads its input), and never cropped.
    """

    def __init__(
        self,
        config: AugmentConfig,
        size: tuple[int, int] | None,
        bodyparts: Sequence[str],
        *,
        stride: int = 16,
    ) -> None:
        low, high = config.scale_jitter
        self.config = config
        self.size = size
        self.scale_range = (config.global_scale * low, config.global_scale * high)
        self.flip_order = flip_permutation(bodyparts, config.symmetric_pairs)
        if not 0.0 <= config.crop_max_shift <= 0.5:
            raise PoseshiftError(
                f"augment.crop_max_shift: {config.crop_max_shift} must be between 0 and 0.5"
            )
        border = {"border_mode": cv2.BORDER_CONSTANT, "fill": 0}
        if size is None:
            pad = A.PadIfNeeded(
                min_height=None,
                min_width=None,
                pad_height_divisor=stride,
                pad_width_divisor=stride,
                position="top_left",
                **border,
            )
        else:
            pad = A.PadIfNeeded(min_height=size[1], min_width=size[0], **border)
        self.geometry = A.Compose(
            [
                # keep_size: the crop or pad is resized back, jittering scale and aspect ratio
                # as imgaug's CropAndPad followed by DeepLabCut's Resize did.
                A.CropAndPad(
                    percent=(-config.crop_pad, config.crop_pad),
                    keep_size=True,
                    sample_independently=True,
                    p=config.crop_pad_p,
                    **border,
                ),
                # Per image the image is scaled before (``_scale_whole``), changing its size.
                A.Affine(scale=self.scale_range, keep_ratio=True, p=size is not None, **border),
                A.Affine(rotate=(-config.rotation, config.rotation), p=config.rotation_p, **border),
                ElasticTransformation((0.0, 40.0), sigma=5.0, p=config.elastic_p),
            ],
            keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
            seed=0,
            save_applied_params=True,
        )
        # Apart, so that a keypoint moved off the image into the padding counts as left.
        self.pad = A.Compose(
            [pad], keypoint_params=A.KeypointParams(format="xy", remove_invisible=False)
        )
        self.photometric = A.Compose(
            [
                A.MotionBlur(blur_limit=7, p=config.motion_blur_p),
                CoarseDropout(0.02, size_percent=0.3, per_channel=0.5, p=config.covering_p),
                A.RandomBrightnessContrast(p=config.brightness_contrast_p),
            ],
            seed=0,
        )

    def __call__(
        self, image: np.ndarray, keypoints: np.ndarray, rng: np.random.Generator
    ) -> Sample:
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
        if self.size is None:
            image, points, scale = self._scale_whole(image, points, rng)
        out = self.geometry(image=image, keypoints=points)
        on_image = _within(np.asarray(out["keypoints"]).reshape(-1, 2), out["image"].shape)
        padded = self.pad(image=out["image"], keypoints=out["keypoints"])
        moved = np.asarray(padded["keypoints"], dtype=np.float32).reshape(-1, 2)
        if self.size is None:
            (height, width), left, top = padded["image"].shape[:2], 0, 0
        else:
            left, top = self._crop_origin(padded["image"].shape, moved, labeled, rng)
            width, height = self.size
        cropped = padded["image"][top : top + height, left : left + width]
        moved = moved - np.array([left, top], np.float32)
        inside = on_image & _within(moved, (height, width))
        # A labeled keypoint pushed out of the crop is "absent here", not "unlabeled": it gets
        # a far-away position so its scoremap is trained to zero (as in DeepLabCut), while
        # keypoints never labeled stay NaN and contribute nothing.
        moved[labeled & ~inside] = ABSENT
        moved[~labeled] = np.nan
        if self.size is not None:
            applied = out["applied_transforms"]
            scale = next(p["scale"]["x"] for name, p in applied if name == "Affine")
        return Sample(self.photometric(image=cropped)["image"], moved, float(scale))

    def _scale_whole(
        self, image: np.ndarray, points: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """The whole image resized by a random factor, as prediction resizes frames
        (``resize_frame``); keypoints follow the pixel centres: (x + 0.5) f - 0.5."""
        height, width = image.shape[:2]
        factor = rng.uniform(*self.scale_range)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        moved = (points + 0.5) * (np.array(size) / (width, height)) - 0.5
        return resize_frame(image, size), moved.astype(np.float32), size[0] / width

    def _crop_origin(
        self,
        shape: tuple[int, ...],
        points: np.ndarray,
        labeled: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[int, int]:
        """Top-left corner of the crop in the (padded) transformed image."""
        assert self.size is not None  # only fixed canvases are cropped
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
