"""The 15 ImageNet-C corruptions (Hendrycks & Dietterich, ICLR 2019) for images of any size.

Parameters per severity are those of the reference ``make_imagenet_c.py`` as adapted to
arbitrary image sizes by bethgelab's ``imagecorruptions`` package (which no longer installs
with numpy 2 / scikit-image 0.2x / opencv-python-headless). Written with numpy, OpenCV, scipy
and Pillow; every random draw comes from the ``rng`` passed in, so one seed gives one image.

Two documented deviations, both for practicality:
- ``glass_blur`` moves every pixel by its random offset in one vectorized step per iteration
  instead of ImageNet-C's sequential pixel swaps (a Python loop of seconds per image).
- ``frost`` overlays a generated ice texture (plasma clouds + thin crystal streaks, tinted
  blue-white) instead of ImageNet-C's six frost photographs, which are not redistributed here.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from poseshift.errors import PoseshiftError

Rng = np.random.Generator


def _unit(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255.0


def _from_unit(x: np.ndarray) -> np.ndarray:
    """Back to uint8, truncating as the reference does (``np.uint8(x * 255)``)."""
    return (np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """scikit-image's ``gaussian`` (mode nearest, truncate 4), channels kept apart."""
    sigmas = (sigma, sigma, 0) if x.ndim == 3 else sigma
    return gaussian_filter(x, sigmas, mode="nearest", truncate=4.0)


def _next_power_of_two(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def plasma_fractal(size: int, decay: float, rng: Rng) -> np.ndarray:
    """Diamond-square height map (size x size, size a power of two) scaled to [0, 1]."""
    grid = np.zeros((size, size), np.float64)
    step, wibble = size, 100.0
    while step >= 2:
        half = step // 2
        corners = grid[0:size:step, 0:size:step]
        square = corners + np.roll(corners, -1, axis=0)
        square = square + np.roll(square, -1, axis=1)
        noise = wibble * rng.uniform(-wibble, wibble, square.shape)
        grid[half:size:step, half:size:step] = square / 4 + noise
        centres = grid[half:size:step, half:size:step]
        top = corners + np.roll(corners, -1, axis=1) + centres + np.roll(centres, 1, axis=0)
        grid[0:size:step, half:size:step] = top / 4 + wibble * rng.uniform(
            -wibble, wibble, top.shape
        )
        left = corners + np.roll(corners, -1, axis=0) + centres + np.roll(centres, 1, axis=1)
        grid[half:size:step, 0:size:step] = left / 4 + wibble * rng.uniform(
            -wibble, wibble, left.shape
        )
        step, wibble = half, wibble / decay
    grid -= grid.min()
    return grid / max(grid.max(), 1e-12)


def _motion_blur(x: np.ndarray, radius: int, sigma: float, angle: float) -> np.ndarray:
    """Sum of edge-replicated shifts along ``angle`` with half-Gaussian weights."""
    width = 2 * radius + 1
    weights = np.exp(-(np.arange(width) ** 2) / (2.0 * sigma**2))
    weights /= weights.sum()
    sin, cos = math.sin(math.radians(angle)), math.cos(math.radians(angle))
    height, wide = x.shape[:2]
    rows, cols = np.arange(height), np.arange(wide)
    out = np.zeros(x.shape, np.float32)
    for i, weight in enumerate(weights):
        dy, dx = -math.ceil(i * sin - 0.5), -math.ceil(i * cos - 0.5)
        if abs(dy) >= height or abs(dx) >= wide:  # the motion left the image
            break
        shifted = x[np.clip(rows - dy, 0, height - 1)][:, np.clip(cols - dx, 0, wide - 1)]
        out += np.float32(weight) * shifted
    return out


def _clipped_zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """Zoom into the centre by ``factor`` keeping the image size (bilinear)."""
    height, width = x.shape[:2]
    crop_h, crop_w = math.ceil(height / factor), math.ceil(width / factor)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    crop = x[top : top + crop_h, left : left + crop_w]
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    span = np.arange(-8, 9) if radius <= 8 else np.arange(-radius, radius + 1)
    ksize = (3, 3) if radius <= 8 else (5, 5)
    xx, yy = np.meshgrid(span, span)
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float32)
    disk /= disk.sum()
    return cv2.GaussianBlur(disk, ksize=ksize, sigmaX=alias_blur)


# ----------------------------------------------------------------------------- noise


def gaussian_noise(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    scale = [0.08, 0.12, 0.18, 0.26, 0.38][severity - 1]
    x = _unit(image)
    return _from_unit(x + rng.normal(0.0, scale, x.shape))


def shot_noise(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    photons = [60, 25, 12, 5, 3][severity - 1]
    return _from_unit(rng.poisson(_unit(image) * photons) / photons)


def impulse_noise(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    amount = [0.03, 0.06, 0.09, 0.17, 0.27][severity - 1]
    x = _unit(image)
    flipped = rng.random(x.shape) <= amount
    salt = rng.random(x.shape) <= 0.5
    x[flipped & salt] = 1.0
    x[flipped & ~salt] = 0.0
    return _from_unit(x)


# ----------------------------------------------------------------------------- blur


def defocus_blur(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    radius, alias = [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)][severity - 1]
    return _from_unit(cv2.filter2D(_unit(image), -1, _disk(radius, alias)))


def glass_blur(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    sigma, delta, iterations = [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)][
        severity - 1
    ]
    x = _from_unit(_blur(_unit(image), sigma))
    height, width = x.shape[:2]
    rows = np.arange(delta + 1, height - delta + 1)[:, None]
    cols = np.arange(delta + 1, width - delta + 1)[None, :]
    if rows.size and cols.size:
        for _ in range(iterations):
            dy = rng.integers(-delta, delta, (rows.size, cols.size))
            dx = rng.integers(-delta, delta, (rows.size, cols.size))
            x[rows, cols] = x[rows + dy, cols + dx]
    return _from_unit(_blur(_unit(x), sigma))


def motion_blur(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    radius, sigma = [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)][severity - 1]
    angle = rng.uniform(-45, 45)
    blurred = _motion_blur(image.astype(np.float32), radius, sigma, angle)
    return np.clip(blurred, 0, 255).astype(np.uint8)


def zoom_blur(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    start, stop, step = [
        (1, 1.11, 0.01),
        (1, 1.16, 0.01),
        (1, 1.21, 0.02),
        (1, 1.26, 0.02),
        (1, 1.31, 0.03),
    ][severity - 1]
    factors = np.arange(start, stop, step)
    x = _unit(image)
    total = x.copy()
    for factor in factors:
        total += _clipped_zoom(x, float(factor))
    return _from_unit(total / (len(factors) + 1))


# ----------------------------------------------------------------------------- weather


def snow(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    loc, scale, zoom, threshold, radius, sigma, keep = [
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ][severity - 1]
    x = _unit(image)
    flakes = rng.normal(loc, scale, x.shape[:2]).astype(np.float32)
    flakes = _clipped_zoom(flakes, zoom)
    flakes[flakes < threshold] = 0
    flakes = _motion_blur(np.clip(flakes, 0, 1), radius, sigma, rng.uniform(-135, -45))
    flakes = (np.round(flakes * 255).astype(np.uint8) / 255.0)[..., None]
    gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)[..., None]
    x = keep * x + (1 - keep) * np.maximum(x, gray * 1.5 + 0.5)
    return _from_unit(x + flakes + np.rot90(flakes, k=2))


def _frost_texture(height: int, width: int, rng: Rng) -> np.ndarray:
    """Ice on a window: cloudy plasma plus thin bright streaks, RGB in 0..255."""
    cloud = plasma_fractal(_next_power_of_two(max(height, width)), 2.0, rng)[:height, :width]
    crystals = np.zeros((height, width), np.float32)
    longest = max(height, width)
    for _ in range(max(30, height * width // 80)):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        angle, length = rng.uniform(0, 2 * math.pi), rng.uniform(0.01, 0.06) * longest
        end = (int(x0 + length * math.cos(angle)), int(y0 + length * math.sin(angle)))
        cv2.line(crystals, (int(x0), int(y0)), end, float(rng.uniform(0.3, 1.0)), 1, cv2.LINE_AA)
    crystals = cv2.GaussianBlur(crystals, (0, 0), 0.6)
    ice = np.clip(0.25 + 0.35 * cloud + 0.6 * crystals, 0, 1)
    return ice[..., None] * np.array([0.82, 0.92, 1.0]) * 255.0


def frost(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    keep, ice = [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)][severity - 1]
    texture = _frost_texture(image.shape[0], image.shape[1], rng)
    return np.clip(keep * image.astype(np.float32) + ice * texture, 0, 255).astype(np.uint8)


def fog(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    strength, decay = [(1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)][severity - 1]
    x = _unit(image)
    height, width = x.shape[:2]
    haze = plasma_fractal(_next_power_of_two(max(height, width)), decay, rng)
    peak = x.max()
    x = x + strength * haze[:height, :width, None].astype(np.float32)
    return _from_unit(x * peak / (peak + strength))


def brightness(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    shift = [0.1, 0.2, 0.3, 0.4, 0.5][severity - 1]
    hsv = cv2.cvtColor(_unit(image), cv2.COLOR_RGB2HSV)
    hsv[..., 2] = np.clip(hsv[..., 2] + shift, 0, 1)
    return _from_unit(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB))


# ----------------------------------------------------------------------------- digital


def contrast(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    factor = [0.4, 0.3, 0.2, 0.1, 0.05][severity - 1]
    x = _unit(image)
    means = x.mean(axis=(0, 1), keepdims=True)
    return _from_unit((x - means) * factor + means)


def elastic_transform(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    alpha = 250 * [0.05, 0.065, 0.085, 0.1, 0.12][severity - 1]
    height, width = image.shape[:2]
    sigma = (height * 0.01, width * 0.01)
    largest = height * 0.005  # the reference uses the height for both directions

    def displacement() -> np.ndarray:
        field = rng.uniform(-largest, largest, (height, width))
        return (gaussian_filter(field, sigma, mode="reflect", truncate=3) * alpha).astype(
            np.float32
        )

    dx, dy = displacement(), displacement()
    cols, rows = np.meshgrid(
        np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    )
    warped = cv2.remap(
        _unit(image), cols + dx, rows + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    return _from_unit(warped)


def pixelate(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    factor = [0.6, 0.5, 0.4, 0.3, 0.25][severity - 1]
    height, width = image.shape[:2]
    small = (max(1, int(width * factor)), max(1, int(height * factor)))
    picture = Image.fromarray(image).resize(small, Image.Resampling.BOX)
    return np.asarray(picture.resize((width, height), Image.Resampling.NEAREST))


def jpeg_compression(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    quality = [25, 18, 15, 10, 7][severity - 1]
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"))


Corruption = Callable[[np.ndarray, int, Rng], np.ndarray]

# ImageNet-C's order (noise, blur, weather, digital): the order of tables and reports.
CORRUPTIONS: dict[str, Corruption] = {
    f.__name__: f
    for f in (
        gaussian_noise,
        shot_noise,
        impulse_noise,
        defocus_blur,
        glass_blur,
        motion_blur,
        zoom_blur,
        snow,
        frost,
        fog,
        brightness,
        contrast,
        elastic_transform,
        pixelate,
        jpeg_compression,
    )
}
SEVERITIES = (1, 2, 3, 4, 5)


def corrupt_image(image: np.ndarray, name: str, severity: int, rng: Rng) -> np.ndarray:
    """``image`` (H, W, 3) uint8 RGB corrupted by ``name`` at ``severity`` (1-5), same shape."""
    if name not in CORRUPTIONS:
        raise PoseshiftError(f"unknown corruption {name!r}; choose from {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise PoseshiftError(f"severity must be 1 to 5, got {severity!r}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise PoseshiftError(
            f"corruptions take RGB uint8 images (H, W, 3), got {image.dtype} {image.shape}"
        )
    out = CORRUPTIONS[name](image, severity, rng)
    return np.ascontiguousarray(out, dtype=np.uint8)
