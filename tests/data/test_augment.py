"""Augmentation keeps labels on the pixels they mark; keypoints leaving the crop are absent."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from poseshift.data.augment import ABSENT, Augmenter
from poseshift.data.loader import pad_collate
from poseshift.errors import PoseshiftError
from poseshift.models.codec import ScoremapCodec
from poseshift.spec import AugmentConfig

COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)


def marked_image() -> tuple[np.ndarray, np.ndarray]:
    """A dark image with a 5x5 coloured square centred on each keypoint."""
    image = np.full((120, 160, 3), 20, np.uint8)
    keypoints = np.array([[40, 30], [100, 60], [130, 95]], np.float32)
    for (x, y), colour in zip(keypoints.astype(int), COLOURS, strict=True):
        image[y - 2 : y + 3, x - 2 : x + 3] = colour
    return image, keypoints


def test_labels_land_on_their_marks() -> None:
    config = AugmentConfig(
        rotation_p=1.0, motion_blur_p=0.0, global_scale=1.0, scale_jitter=(0.8, 1.25)
    )
    augment = Augmenter(config, (128, 96), ["a", "b", "c"])
    image, keypoints = marked_image()
    checked = 0
    for seed in range(20):
        out, moved, _ = augment(image, keypoints, np.random.default_rng(seed))
        assert out.shape == (96, 128, 3)
        for k, (x, y) in enumerate(moved):
            if x == ABSENT:
                continue
            pixel = out[round(y), round(x)].astype(int)
            assert np.argmax(pixel) == np.argmax(COLOURS[k]), (seed, k, pixel)
            checked += 1
    assert checked > 30


def test_flip_swaps_symmetric_bodyparts() -> None:
    config = AugmentConfig(
        rotation_p=0.0,
        motion_blur_p=0.0,
        global_scale=1.0,
        scale_jitter=(1.0, 1.0),
        fliplr=True,
        symmetric_pairs=[["a", "b"]],
    )
    augment = Augmenter(config, (160, 120), ["a", "b", "c"])
    image, keypoints = marked_image()
    flipped = 0
    for seed in range(10):
        out, moved, _ = augment(image, keypoints, np.random.default_rng(seed))
        if moved[2, 0] > 80:  # c (x=130) moved to the left half only when not flipped
            continue
        flipped += 1
        # After a flip, "a" is the mark that was "b" (green) and vice versa.
        assert np.argmax(out[round(moved[0, 1]), round(moved[0, 0])]) == 1
        assert np.argmax(out[round(moved[1, 1]), round(moved[1, 0])]) == 0
    assert flipped > 0


def test_keypoints_leaving_the_crop_are_trained_as_absent() -> None:
    config = dataclasses.replace(
        AugmentConfig(),
        rotation_p=0.0,
        motion_blur_p=0.0,
        global_scale=1.0,
        scale_jitter=(1.0, 1.0),
    )
    augment = Augmenter(config, (32, 32), ["a", "b", "c"])
    image, keypoints = marked_image()
    keypoints[1] = np.nan  # never labeled
    _, moved, _ = augment(image, keypoints, np.random.default_rng(0))
    assert np.isnan(moved[1]).all()
    outside = [k for k in (0, 2) if moved[k, 0] == ABSENT]
    assert outside  # a 32x32 crop of a 160x120 image cannot hold both marks
    targets = ScoremapCodec().encode(torch.from_numpy(moved)[None], (4, 4))
    for k in outside:
        assert targets["scoremap_weight"][0, k].min() == 1  # trained: "not here"
        assert targets["scoremap"][0, k].max() == 0
    assert targets["scoremap_weight"][0, 1].max() == 0  # unlabeled: ignored


def empty_crop_fraction(sampling: str) -> float:
    """Share of 32x32 crops of a 160x120 image that hold none of the three marks."""
    config = AugmentConfig(
        rotation_p=0.0,
        motion_blur_p=0.0,
        global_scale=1.0,
        scale_jitter=(1.0, 1.0),
        crop_sampling=sampling,
    )
    augment = Augmenter(config, (32, 32), ["a", "b", "c"])
    image, keypoints = marked_image()
    empty = 0
    for seed in range(200):
        out, moved, _ = augment(image, keypoints, np.random.default_rng(seed))
        for k, (x, y) in enumerate(moved):
            if x != ABSENT:  # every kept label still sits on its own mark
                assert np.argmax(out[round(y), round(x)]) == np.argmax(COLOURS[k])
        empty += bool((moved[:, 0] == ABSENT).all())
    return empty / 200


def test_keypoint_aware_crops_hold_the_animal() -> None:
    uniform = empty_crop_fraction("uniform")
    assert uniform > 0.5  # most of this image is background
    assert empty_crop_fraction("keypoints") == 0.0
    assert empty_crop_fraction("hybrid") < 0.75 * uniform


def test_crop_shift_out_of_range_is_an_error() -> None:
    with pytest.raises(PoseshiftError, match="crop_max_shift"):
        Augmenter(AugmentConfig(crop_max_shift=0.7), (64, 64), ["a", "b", "c"])


def test_scale_is_the_same_for_both_axes_and_reported() -> None:
    config = AugmentConfig(
        rotation_p=0.0, motion_blur_p=0.0, global_scale=0.8, scale_jitter=(0.5, 1.25)
    )
    augment = Augmenter(config, (160, 120), ["a", "b", "c"])
    image, keypoints = marked_image()
    scales = []
    for seed in range(10):
        sample = augment(image, keypoints, np.random.default_rng(seed))
        kept = sample.keypoints[:, 0] != ABSENT
        if kept.sum() < 2:
            continue
        a, b = np.flatnonzero(kept)[:2]
        moved = np.abs(sample.keypoints[a] - sample.keypoints[b])
        original = np.abs(keypoints[a] - keypoints[b])
        np.testing.assert_allclose(moved / original, sample.scale, rtol=0.03)
        scales.append(sample.scale)
    assert len(scales) >= 5 and 0.4 <= min(scales) < max(scales) <= 1.0


def test_dlc22_imgaug_augmenters_keep_labels_on_their_marks() -> None:
    config = AugmentConfig(
        rotation_p=0.0,
        motion_blur_p=0.0,
        global_scale=1.0,
        scale_jitter=(1.0, 1.0),
        crop_pad_p=1.0,
        elastic_p=1.0,
    )
    augment = Augmenter(config, (160, 120), ["a", "b", "c"])
    image, keypoints = marked_image()
    shifted = 0
    for seed in range(20):
        out, moved, _ = augment(image, keypoints, np.random.default_rng(seed))
        for k, (x, y) in enumerate(moved):
            if x != ABSENT:
                assert np.argmax(out[round(y), round(x)]) == np.argmax(COLOURS[k]), (seed, k)
        shifted += not np.allclose(moved, keypoints, atol=1.0)
    assert shifted >= 15  # crop-and-pad resized back moves (nearly) every sample


def test_covering_drops_about_two_percent_of_pixels_in_blocks() -> None:
    config = AugmentConfig(
        rotation_p=0.0, motion_blur_p=0.0, global_scale=1.0, scale_jitter=(1.0, 1.0)
    )
    covered = dataclasses.replace(config, covering_p=1.0)
    image = np.full((120, 160, 3), 200, np.uint8)
    keypoints = np.array([[40, 30], [100, 60], [130, 95]], np.float32)
    plain = Augmenter(config, (160, 120), ["a", "b", "c"])
    assert (plain(image, keypoints, np.random.default_rng(0)).image > 0).all()
    dropped = []
    for seed in range(20):
        out = Augmenter(covered, (160, 120), ["a", "b", "c"])(
            image, keypoints, np.random.default_rng(seed)
        ).image
        dropped.append((out == 0).mean())
        zero = (out == 0).any(axis=2)
        if zero.any():  # dropped pixels come in blocks of ~1/0.3 = 3 pixels
            ys, xs = np.nonzero(zero)
            assert (
                zero[ys, np.clip(xs + 1, 0, 159)].mean() + zero[ys, np.clip(xs - 1, 0, 159)].mean()
                > 1
            )
    assert 0.01 < np.mean(dropped) < 0.03


def test_per_image_samples_are_the_whole_scaled_image_padded_to_the_stride() -> None:
    """``canvas: per_image`` (the paper presets): no content is cut and the only padding is up
    to the next multiple of 16, on the right and bottom, as the predictor pads frames."""
    config = AugmentConfig(rotation_p=0.0, motion_blur_p=0.0, canvas="per_image")
    augment = Augmenter(config, None, ["a", "b", "c"], stride=16)
    image, keypoints = marked_image()
    sizes = set()
    for seed in range(20):
        out, moved, scale = augment(image, keypoints, np.random.default_rng(seed))
        height, width = out.shape[:2]
        assert height % 16 == 0 and width % 16 == 0
        content = np.argwhere(out.max(axis=2) > 0)  # the dark image is 20, padding 0
        assert content.min(axis=0).tolist() == [0, 0]
        bottom, right = content.max(axis=0) + 1
        assert right == round(160 * scale) and abs(bottom - 120 * scale) <= 1
        assert height - 16 < bottom <= height and width - 16 < right <= width
        assert (moved != ABSENT).all()  # nothing leaves the sample
        for k, (x, y) in enumerate(moved):
            assert np.argmax(out[round(y), round(x)]) == np.argmax(COLOURS[k]), (seed, k)
        sizes.add((width, height))
    assert len(sizes) > 2  # the scale jitter makes sizes differ


@pytest.mark.parametrize("canvas", ["per_image", "fixed"])
def test_keypoints_rotated_off_the_image_into_its_padding_are_absent(canvas: str) -> None:
    """A labeled keypoint that rotation moves off the image is "absent here", also where the
    sample's padding (to the stride, or up to a larger fixed canvas) lies beyond that edge:
    never trained as present on black pixels."""
    config = AugmentConfig(rotation=30, rotation_p=1.0, motion_blur_p=0.0, canvas=canvas)
    size = None if canvas == "per_image" else (192, 128)  # larger than every scaled image
    augment = Augmenter(config, size, ["a", "b", "c", "d"], stride=16)
    image = np.full((100, 150, 3), 200, np.uint8)
    corners = np.array([[147, 97], [2, 97], [147, 2], [120, 90]], np.float32)
    absent = 0
    for seed in range(60):
        out, moved, _ = augment(image, corners, np.random.default_rng(seed))
        kept = moved[:, 0] != ABSENT
        absent += int((~kept).sum())
        for x, y in moved[kept]:
            assert out[round(y), round(x)].max() > 0, (seed, x, y)  # on the image, not padding
    assert absent > 20  # the corners do leave the image often


def test_batches_of_differently_sized_samples_are_padded_to_the_largest() -> None:
    small = (torch.full((32, 48, 3), 7, dtype=torch.uint8), torch.ones(3, 2), torch.tensor(0.5))
    large = (torch.full((64, 32, 3), 9, dtype=torch.uint8), torch.zeros(3, 2), torch.tensor(1.0))
    images, keypoints, scales = pad_collate([small, large])
    assert images.shape == (2, 64, 48, 3) and images.dtype == torch.uint8
    assert (images[0, :32, :48] == 7).all() and (images[0, 32:] == 0).all()
    assert (images[1, :, :32] == 9).all() and (images[1, :, 32:] == 0).all()
    assert keypoints.shape == (2, 3, 2) and scales.tolist() == [0.5, 1.0]
