"""How one synthetic frame looks: the style vector, its colour anchors and the resolved ``Look``.

Every frame is drawn from a style vector in [0, 1]^D (``STYLE``)::

    style = shift * own + (1 - shift) * shared + jitter

``own`` is drawn once per individual and ``shared`` once per frame, both from the same wide
prior (``frame_styles``); ``make_look`` turns one vector into coat, proportions and scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STYLE = (
    "coat", "coat_light", "pattern", "pattern_scale", "mane", "blaze", "socks",
    "legs", "neck", "depth", "length", "size", "head",
    "ground", "backdrop", "horizon", "texture", "texture_scale",
    "light_angle", "light", "exposure", "shadow", "tint",
    "handler", "handler_side", "handler_x", "clothes",
    "clutter", "clutter_colour", "clutter_kind", "blur", "noise",
)  # fmt: skip
FRAME_JITTER = 0.03  # style spread between frames of one individual at domain_shift=1

# Colour anchors (RGB), interpolated by a style value in 0..1.
COATS = np.array([
    (35, 30, 30), (75, 45, 30), (120, 65, 35), (160, 80, 40), (185, 105, 60),
    (185, 150, 105), (215, 180, 110), (160, 158, 152), (228, 224, 215),
], dtype=np.float32)  # fmt: skip
GROUNDS = np.array([
    (55, 85, 40), (95, 130, 60), (150, 145, 90), (195, 175, 135), (120, 95, 70),
    (95, 95, 98), (225, 228, 232), (170, 140, 110),
], dtype=np.float32)  # fmt: skip
BACKDROPS = np.array([
    (40, 65, 35), (75, 105, 55), (170, 195, 225), (205, 195, 180), (130, 60, 45),
    (140, 110, 80), (115, 118, 125), (60, 50, 45),
], dtype=np.float32)  # fmt: skip
CLOTHES = np.concatenate([COATS, np.array([(50, 70, 110), (35, 40, 55)], dtype=np.float32)])
PATTERNS = ("solid", "dapple", "pinto", "spots")
CLUTTER = ("posts", "blobs", "rails")


@dataclass(frozen=True)
class Look:
    """Everything about one frame's appearance and scene, resolved from a style vector."""

    coat: np.ndarray  # RGB float
    mane: np.ndarray
    pattern: str
    pattern_scale: float  # noise cells across the image
    blaze: bool
    socks: int  # number of white lower legs
    legs: float  # proportions, relative to an average horse
    neck: float
    depth: float  # body depth in wither heights
    length: float
    head: float
    size: float  # wither height / image height at the reference distance
    ground: np.ndarray
    backdrop: np.ndarray
    horizon: float  # fraction of the image height
    texture: float
    texture_scale: float
    light_dir: np.ndarray  # unit 2D vector towards the light, image coordinates (y down)
    light: float
    exposure: float
    shadow: float
    tint: float  # -1 cold .. 1 warm
    handler: bool
    handler_front: bool
    handler_x: float  # wither heights ahead of the nose
    clothes: np.ndarray
    clutter: int
    clutter_colour: np.ndarray
    clutter_kind: str
    blur: float
    noise: float


def palette(colours: np.ndarray, u: float) -> np.ndarray:
    """The colour at position ``u`` along anchors, linear in between (continuous looks)."""
    pos = float(np.clip(u, 0, 1)) * (len(colours) - 1)
    i = min(int(pos), len(colours) - 2)
    return colours[i] + (pos - i) * (colours[i + 1] - colours[i])


def make_look(style: np.ndarray) -> Look:
    """Map a style vector in [0, 1]^D onto concrete colours, proportions and scene settings."""
    s = dict(zip(STYLE, style.tolist(), strict=True))
    coat = np.clip(palette(COATS, s["coat"]) * (0.8 + 0.4 * s["coat_light"]), 0, 255)
    angle = np.pi * (1 + s["light_angle"])  # from the left, over the top, to the right
    return Look(
        coat=coat,
        mane=coat * (0.2 + 0.8 * (1 - s["mane"])),
        pattern=PATTERNS[min(int(s["pattern"] * len(PATTERNS)), len(PATTERNS) - 1)],
        pattern_scale=3 + 9 * s["pattern_scale"],
        blaze=s["blaze"] > 0.5,
        socks=min(int(s["socks"] * 5), 4),
        legs=0.85 + 0.3 * s["legs"],
        neck=0.8 + 0.4 * s["neck"],
        depth=0.36 + 0.12 * s["depth"],
        length=0.9 + 0.25 * s["length"],
        head=0.85 + 0.3 * s["head"],
        size=0.32 + 0.3 * s["size"],
        ground=palette(GROUNDS, s["ground"]),
        backdrop=palette(BACKDROPS, s["backdrop"]),
        horizon=0.15 + 0.45 * s["horizon"],
        texture=0.04 + 0.3 * s["texture"],
        texture_scale=4 + 40 * s["texture_scale"],
        light_dir=np.array([np.cos(angle), np.sin(angle)]),
        light=0.6 * s["light"],
        exposure=0.7 + 0.5 * s["exposure"],
        shadow=0.15 + 0.55 * s["shadow"],
        tint=2 * s["tint"] - 1,
        handler=s["handler"] > 0.2,
        handler_front=s["handler_side"] > 0.5,
        handler_x=-1.0 + 1.4 * s["handler_x"],
        clothes=palette(CLOTHES, s["clothes"]),
        clutter=min(int(8 * s["clutter"]), 7),
        clutter_colour=palette(COATS, s["clutter_colour"]),
        clutter_kind=CLUTTER[min(int(s["clutter_kind"] * len(CLUTTER)), len(CLUTTER) - 1)],
        blur=1.2 * s["blur"],
        noise=1 + 6 * s["noise"],
    )


def frame_styles(rng: np.random.Generator, n_frames: int, shift: float) -> np.ndarray:
    """(n_frames, D) style vectors of one individual: its own corner of the prior, or all of it."""
    own = rng.random(len(STYLE))
    shared = rng.random((n_frames, len(STYLE)))
    jitter = rng.normal(0, FRAME_JITTER, (n_frames, len(STYLE)))
    return np.clip(shift * own + (1 - shift) * shared + jitter, 0, 1)
