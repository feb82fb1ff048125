"""Drawing for the synthetic benchmark: scene, clutter, handler, shadow, horse, camera.

OpenCV rasterizes (anti-aliased polygons, capsules and ellipses at 1/16-pixel precision) and
numpy composites. Layers go back to front: backdrop and ground, clutter, a handler behind the
horse, the horse's shadow, far legs and tail, the textured coat (body, neck, head, near legs),
markings, a handler in front, then light, exposure, tint, blur and sensor noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from poseshift.datasets.synthetic.horse import LEGS
from poseshift.datasets.synthetic.look import Look

SHIFT = 4  # cv2 fixed-point bits: coordinates are passed as 1/16 pixel
ONE = 1 << SHIFT
FORE_RADII = (0.075, 0.045, 0.035, 0.04)  # elbow, knee, fetlock, foot (wither heights)
HIND_RADII = (0.17, 0.09, 0.045, 0.035, 0.04)  # hip joint, stifle, hock, fetlock, foot
BODY_OUTLINE = (
    "Wither", "back", "croup", "tailhead", "Ischium", "buttock", "flank", "belly", "Girth",
    "Elbow", "chest", "Shoulder",
)  # fmt: skip
NECK_OUTLINE = ("Wither", "crest", "forehead", "throat", "Shoulder", "Midshoulder")
HEAD_OUTLINE = ("forehead", "muzzle_top", "muzzle_bottom", "jaw", "throat", "poll")
WHITE = np.array([236, 233, 226], dtype=np.float32)
HOOF = np.array([48, 42, 40], dtype=np.float32)
SKIN = np.array([205, 165, 135], dtype=np.float32)


@dataclass
class Frame:
    """Where one frame's horse stands: its points (wither heights) and how they map to pixels."""

    points: dict[str, np.ndarray]  # from horse.horse_points: x forward, y up, ground at 0
    scale: float  # pixels per wither height
    origin: np.ndarray  # image position of the horse's (0, 0)
    phase: float  # gait phase, also paces the handler
    size: tuple[int, int]  # width, height

    def to_image(self, point: np.ndarray) -> np.ndarray:
        return self.origin + self.scale * np.array([point[0], -point[1]])


def render_frame(frame: Frame, look: Look, rng: np.random.Generator) -> np.ndarray:
    """One RGB uint8 frame (H, W, 3) of the horse in ``frame`` as ``look`` describes it."""
    px = {name: frame.to_image(point) for name, point in frame.points.items()}
    s = frame.scale
    image = _to_u8(_background(look, frame.size, rng))
    _clutter(image, look, frame, rng)
    if look.handler and not look.handler_front:
        _handler(image, look, frame, px, depth=0.85)
    near, far = _horse_masks(px, s, frame.size)
    lit = _shade(image.astype(np.float32), _shadow(np.maximum(near, far), look, frame), look.shadow)
    lit = _composite(lit, far, look.coat * 0.72)
    image = _to_u8(lit)
    _capsule(image, px["tailhead"], px["tail_tip"], 0.03 * s, 0.06 * s, look.mane)
    image = _to_u8(_composite(image.astype(np.float32), near, _coat(look, px, s, frame.size, rng)))
    _markings(image, look, px, s)
    if look.handler and look.handler_front:
        _handler(image, look, frame, px, depth=1.1)
    return _camera(image.astype(np.float32), look, rng)


# ----------------------------------------------------------------------------- primitives


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, dtype=np.float64) * ONE).astype(np.int32)


def _polygon(canvas: np.ndarray, points: list[np.ndarray], colour) -> None:
    cv2.fillPoly(canvas, [_fixed(points)], _colour(colour), cv2.LINE_AA, SHIFT)


def _capsule(canvas: np.ndarray, p0, p1, r0: float, r1: float, colour) -> None:
    """A tapered limb segment: a quad between two discs of radii r0 and r1."""
    p0, p1 = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    colour = _colour(colour)
    delta = p1 - p0
    length = float(np.hypot(*delta))
    if length > 1e-6:
        normal = np.array([-delta[1], delta[0]]) / length
        quad = [p0 + r0 * normal, p1 + r1 * normal, p1 - r1 * normal, p0 - r0 * normal]
        cv2.fillConvexPoly(canvas, _fixed(quad), colour, cv2.LINE_AA, SHIFT)
    for centre, radius in ((p0, r0), (p1, r1)):
        cv2.circle(
            canvas, _fixed(centre).tolist(), round(radius * ONE), colour, -1, cv2.LINE_AA, SHIFT
        )


def _colour(colour) -> float | tuple[float, ...]:
    return float(colour) if np.isscalar(colour) else tuple(float(c) for c in colour)


def _noise(rng: np.random.Generator, size: tuple[int, int], cells: float) -> np.ndarray:
    """Smooth noise in -0.5..0.5 with about ``cells`` blobs across the width (float32, H x W)."""
    width, height = size
    grid = (max(2, round(cells * height / width)), max(2, round(cells)))
    small = rng.random(grid, dtype=np.float32)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC) - 0.5


def _to_u8(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0, 255).astype(np.uint8)


def _composite(image: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> np.ndarray:
    alpha = mask.astype(np.float32)[..., None] / 255
    return image * (1 - alpha) + colour.astype(np.float32) * alpha


def _shade(image: np.ndarray, mask: np.ndarray, strength: float) -> np.ndarray:
    return image * (1 - strength * mask.astype(np.float32)[..., None] / 255)


# ----------------------------------------------------------------------------- scene


def _background(look: Look, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Backdrop above a soft horizon, ground below, both with grain at the scene's own scale."""
    height = size[1]
    rows = np.arange(height, dtype=np.float32)[:, None, None]
    ground = np.clip((rows - look.horizon * height) / (0.03 * height) + 0.5, 0, 1)
    image = look.backdrop * (1 - ground) + look.ground * ground
    grain = _noise(rng, size, look.texture_scale) + 0.6 * _noise(rng, size, 3)
    return image * (1 + look.texture * grain[..., None])


def _clutter(image: np.ndarray, look: Look, frame: Frame, rng: np.random.Generator) -> None:
    """Posts, bales or jump rails in coat-like colours: distractors the horse must beat."""
    width, _ = frame.size
    for _ in range(look.clutter):
        colour = np.clip(look.clutter_colour + rng.normal(0, 18, 3), 0, 255)
        k = frame.scale * rng.uniform(0.6, 1.1)
        x, y = rng.uniform(0, width), frame.origin[1] - rng.uniform(0.0, 0.35) * frame.scale
        if look.clutter_kind == "posts":
            top = (x + rng.normal(0, 0.05) * k, y - rng.uniform(0.5, 1.2) * k)
            _capsule(image, (x, y), top, 0.045 * k, 0.035 * k, colour)
        elif look.clutter_kind == "blobs":
            axes = (
                round(rng.uniform(0.15, 0.45) * k * ONE),
                round(rng.uniform(0.1, 0.3) * k * ONE),
            )
            centre = _fixed((x, y - axes[1] / ONE)).tolist()
            angle = rng.uniform(-20, 20)
            cv2.ellipse(image, centre, axes, angle, 0, 360, _colour(colour), -1, cv2.LINE_AA, SHIFT)
        else:
            right = x + rng.uniform(0.6, 1.0) * k
            for post in (x, right):
                _capsule(image, (post, y), (post, y - 0.9 * k), 0.04 * k, 0.035 * k, colour)
            for level in rng.uniform(0.3, 0.85, rng.integers(1, 4)):
                bar = (x, y - level * k), (right, y - (level + rng.normal(0, 0.05)) * k)
                _capsule(image, *bar, 0.025 * k, 0.025 * k, colour * 1.15)


def _handler(image: np.ndarray, look: Look, frame: Frame, px: dict, depth: float) -> None:
    """A person leading the horse: striding legs (the hard distractor), torso, arm and rope."""
    s = frame.scale * depth
    foot_y = frame.origin[1] + (depth - 1) * 0.8 * frame.scale
    x = px["Nose"][0] + look.handler_x * frame.scale
    hip = np.array([x, foot_y - 0.55 * s])
    swing = 0.35 * np.sin(2 * np.pi * frame.phase)
    trousers, top = look.clothes, np.clip(look.clothes * 0.6 + 70, 0, 255)
    for sign in (1.0, -1.0):
        knee = hip + 0.28 * s * np.array([np.sin(sign * swing), np.cos(sign * swing)])
        bend = sign * swing - 0.2 * max(0.0, sign * np.cos(2 * np.pi * frame.phase))
        foot = knee + 0.27 * s * np.array([np.sin(bend), np.cos(bend)])
        _capsule(image, hip, knee, 0.065 * s, 0.045 * s, trousers)
        _capsule(image, knee, foot, 0.045 * s, 0.035 * s, trousers)
        _capsule(image, foot, foot + np.array([0.08 * s, 0]), 0.03 * s, 0.03 * s, HOOF)
    shoulder = hip - np.array([0, 0.4 * s])
    waist, chest = np.array([0.1 * s, 0]), np.array([0.12 * s, 0])
    _polygon(image, [hip - waist, hip + waist, shoulder + chest, shoulder - chest], top)
    hand = shoulder + 0.35 * s * np.array([np.sign(px["jaw"][0] - x) * 0.6, 0.8])
    _capsule(image, shoulder, hand, 0.04 * s, 0.03 * s, top)
    cv2.line(image, _fixed(hand).tolist(), _fixed(px["jaw"]).tolist(), (40, 35, 30),
             max(1, round(0.012 * s)), cv2.LINE_AA, SHIFT)  # fmt: skip
    head = shoulder - np.array([0, 0.12 * s])
    _capsule(image, head, head, 0.075 * s, 0.075 * s, SKIN)


# ----------------------------------------------------------------------------- horse


def _horse_masks(px: dict, s: float, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """uint8 coverage of the near side (body, neck, head, near legs) and of the far legs."""
    width, height = size
    near, far = np.zeros((height, width), np.uint8), np.zeros((height, width), np.uint8)
    for leg, names in LEGS.items():
        radii = FORE_RADII if leg.endswith("fore") else HIND_RADII
        for a, b, r0, r1 in zip(names, names[1:], radii, radii[1:], strict=False):
            _capsule(near if leg.startswith("near") else far, px[a], px[b], r0 * s, r1 * s, 255)
    for outline in (BODY_OUTLINE, NECK_OUTLINE, HEAD_OUTLINE, ("poll", "ear", "forehead")):
        _polygon(near, [px[name] for name in outline], 255)
    return near, far


def _coat(look: Look, px: dict, s: float, size: tuple[int, int], rng: np.random.Generator):
    """The coat colour field: hair grain, pattern, top-lit body and directional light."""
    width = size[0]
    coat = look.coat * (1 + 0.08 * _noise(rng, size, width / 3))[..., None]
    pattern = _noise(rng, size, look.pattern_scale)
    if look.pattern == "dapple":
        coat = coat * (1 + 0.5 * np.clip(4 * pattern, -0.5, 0.5))[..., None]
    elif look.pattern == "pinto":
        white = np.clip(8 * pattern - 0.5, 0, 1)[..., None]
        coat = coat * (1 - white) + WHITE * white
    elif look.pattern == "spots":
        spots = np.clip(12 * (_noise(rng, size, 3 * look.pattern_scale) - 0.2), 0, 1)[..., None]
        coat = coat * (1 - 0.7 * spots) + WHITE * 0.3 * spots * (look.coat.mean() < 120)
    ys, xs = _axes(size)
    top, bottom = px["Wither"][1], px["Nearfrontfoot"][1]
    vertical = 1.15 - 0.4 * np.clip((ys - top) / max(bottom - top, 1), 0, 1)
    centre, (lx, ly) = px["Girth"], look.light_dir
    towards = np.clip(((xs - centre[0]) * lx + (ys - centre[1]) * ly) / s, -1, 1)
    return coat * (vertical * (1 + 0.5 * look.light * towards))[..., None]


def _markings(image: np.ndarray, look: Look, px: dict, s: float) -> None:
    """Mane, eye, blaze, socks and hooves, drawn solid over the coat."""
    pts = _fixed([px["Wither"], px["crest"], px["poll"]])
    cv2.polylines(
        image, [pts], False, _colour(look.mane), max(1, round(0.05 * s)), cv2.LINE_AA, SHIFT
    )
    eye = 0.022 * s
    _capsule(image, px["Eye"], px["Eye"], eye, eye, (25, 20, 20))
    if look.blaze:
        along = px["Nose"] - px["poll"]
        _capsule(
            image, px["poll"] + 0.25 * along, px["poll"] + 0.85 * along, 0.02 * s, 0.015 * s, WHITE
        )
    for number, (leg, names) in enumerate(LEGS.items()):
        joint, fetlock, foot = px[names[-3]], px[names[-2]], px[names[-1]]
        dim = 0.8 if leg.startswith("off") else 1.0
        hoof_top = fetlock + 0.6 * (foot - fetlock)
        if number < look.socks:
            _capsule(image, 0.5 * (joint + fetlock), hoof_top, 0.037 * s, 0.04 * s, WHITE * dim)
        _capsule(image, hoof_top, foot, 0.042 * s, 0.046 * s, HOOF * dim)


# ----------------------------------------------------------------------------- camera


def _shadow(mask: np.ndarray, look: Look, frame: Frame) -> np.ndarray:
    """The horse's silhouette flattened onto the ground towards the camera, sheared by the sun."""
    width, height = frame.size
    ground = float(frame.origin[1])
    shear, squash = -0.8 * look.light_dir[0], 0.25  # shadow falls away from the light
    warp = np.float32([[1, -shear, shear * ground], [0, -squash, ground * (1 + squash)]])
    shadow = cv2.warpAffine(mask, warp, (width, height))
    return cv2.GaussianBlur(shadow, (0, 0), max(0.5, 0.03 * frame.scale))


def _camera(image: np.ndarray, look: Look, rng: np.random.Generator) -> np.ndarray:
    """Scene light gradient, exposure, white balance, focus blur and sensor noise."""
    ys, xs = _axes((image.shape[1], image.shape[0]))
    lx, ly = look.light_dir
    light = 1 + look.light * ((xs / image.shape[1] - 0.5) * lx + (ys / image.shape[0] - 0.5) * ly)
    tint = np.array([1 + 0.12 * look.tint, 1, 1 - 0.12 * look.tint], dtype=np.float32)
    image = image * (light * look.exposure)[..., None] * tint
    if look.blur > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), look.blur)
    grain = rng.standard_normal(image.shape[:2], dtype=np.float32) * look.noise
    return _to_u8(image + grain[..., None])  # luminance noise, as a compressed video has


def _axes(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel rows (H, 1) and columns (1, W) as float32, to broadcast instead of meshgrids."""
    width, height = size
    rows = np.arange(height, dtype=np.float32)[:, None]
    return rows, np.arange(width, dtype=np.float32)[None, :]
