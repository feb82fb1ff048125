"""Decode labeled frames into RGB uint8 arrays, whatever bit depth or channels they have.

Everything downstream (augmentation, networks, figures) assumes 8-bit RGB, so every file is
brought there here, or refused in one line:

* 8-bit grayscale, palette and CMYK images are converted to RGB;
* RGBA / LA: the alpha channel is dropped (as DeepLabCut's own readers do);
* 16-bit PNGs and TIFFs keep their high byte (``v >> 8``, 65535 -> 255) for gray and color
  alike; a plain ``convert("RGB")`` clips 16-bit gray to 255, a white frame;
* 32-bit integer and float images have no agreed range: refused;
* a truncated or corrupt file is refused (the whole image is decoded, so it fails here and
  not in the middle of training).

``resize_frame`` is the one resampling of frames, for training and prediction alike.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from poseshift.errors import PoseshiftError


def _to_rgb8(image: Image.Image, path: Path) -> np.ndarray:
    if image.mode.startswith("I;16"):
        gray = (np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode in ("I", "F"):
        raise PoseshiftError(
            f"image {path} has 32-bit {'float' if image.mode == 'F' else 'integer'} pixels, "
            "which have no fixed range: save it as an 8-bit (or 16-bit) PNG or JPEG"
        )
    return np.asarray(image.convert("RGB"))


def read_image(path: Path) -> np.ndarray:
    """RGB uint8 ``(H, W, 3)``; a missing, corrupt or unsupported file is a one-line error."""
    try:
        with Image.open(path) as image:
            image.load()
            return _to_rgb8(image, path)
    except FileNotFoundError:
        raise PoseshiftError(
            f"image {path} is listed in the labels but missing on disk: restore it or "
            "remove its row from the CollectedData file"
        ) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise PoseshiftError(
            f"image {path} cannot be decoded ({exc}): it is truncated or not an image; "
            "replace it or remove its row from the CollectedData file"
        ) from None


def image_size(path: Path) -> tuple[int, int]:
    """(width, height), decoding the whole file to catch truncation."""
    image = read_image(path)
    return image.shape[1], image.shape[0]


def resize_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to ``size`` (W, H): area averaging when shrinking, bilinear when growing.

    Every prediction path (video frames, labeled images) and training's per-image scaling
    resize through here, so a network trains on the resampling it is run on.
    """
    height, width = frame.shape[:2]
    if (width, height) == tuple(size):
        return frame
    shrink = size[0] * size[1] < width * height
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
