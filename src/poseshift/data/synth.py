"""A synthetic Horse-10: quadrupeds walking through their own scenes, with real domain shift.

Each individual (one "video" folder) is a horse with its own coat, markings and proportions
in its own scene (ground and backdrop, lighting, shadow, a handler, clutter in coat-like
colours), walking left to right with a walk gait. Every frame is drawn from a style vector
in [0, 1]^D (``STYLE``)::

    style = shift * own + (1 - shift) * shared + jitter

``own`` is drawn once per individual and ``shared`` once per frame, both from the same wide
prior. At ``domain_shift=1`` an individual covers a small corner of the prior, so ten training
individuals cannot cover the other twenty (the Horse-10 situation); at 0 the frames of every
individual cover the whole prior and out-of-domain is within-domain. Pose, position and
distance vary per frame at any shift. Drawing lives in :mod:`poseshift.data.synth_render`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from poseshift.data.project import PoseDataset, write_project
from poseshift.data.synth_render import LEGS, Frame, render_frame
from poseshift.errors import PoseshiftError
from poseshift.fsutil import write_text_atomic

BODYPARTS = [
    "Nose", "Eye", "Nearknee", "Nearfrontfetlock", "Nearfrontfoot", "Offknee",
    "Offfrontfetlock", "Offfrontfoot", "Shoulder", "Midshoulder", "Elbow", "Girth", "Wither",
    "Nearhindhock", "Nearhindfetlock", "Nearhindfoot", "Hip", "Stifle", "Offhindhock",
    "Offhindfetlock", "Offhindfoot", "Ischium",
]  # fmt: skip
SKELETON = [
    ("Nose", "Eye"), ("Eye", "Wither"), ("Wither", "Midshoulder"), ("Midshoulder", "Shoulder"),
    ("Shoulder", "Elbow"), ("Elbow", "Girth"), ("Wither", "Hip"), ("Hip", "Ischium"),
    ("Hip", "Stifle"), ("Girth", "Stifle"),
    ("Elbow", "Nearknee"), ("Nearknee", "Nearfrontfetlock"), ("Nearfrontfetlock", "Nearfrontfoot"),
    ("Elbow", "Offknee"), ("Offknee", "Offfrontfetlock"), ("Offfrontfetlock", "Offfrontfoot"),
    ("Stifle", "Nearhindhock"), ("Nearhindhock", "Nearhindfetlock"),
    ("Nearhindfetlock", "Nearhindfoot"), ("Stifle", "Offhindhock"),
    ("Offhindhock", "Offhindfetlock"), ("Offhindfetlock", "Offhindfoot"),
]  # fmt: skip
SCORER = "synth"
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

# Leg segments (lengths in wither heights) and rest angles (radians from straight down,
# positive = forward): fore = forearm, cannon, pastern; hind = thigh, gaskin, cannon, pastern.
FORE_LENGTHS = (0.27, 0.21, 0.09)
HIND_LENGTHS = (0.30, 0.31, 0.25, 0.09)
HIND_REST = (0.5, -0.45, 0.0, 0.6)
PASTERN_ANGLE = 0.6
STANCE = 0.62  # fraction of the stride a foot is on the ground (walk)
WALK_PHASE = {"near_fore": 0.25, "off_fore": 0.75, "near_hind": 0.0, "off_hind": 0.5}
OFF_SIDE = np.array([0.04, 0.035])  # far legs sit a little forward and higher in the image
# Side-view body points: x in body lengths from mid-barrel, y in body depths above the elbow.
BODY = {
    "Wither": (0.30, 1.0), "Midshoulder": (0.37, 0.66), "Shoulder": (0.47, 0.36),
    "chest": (0.45, 0.1), "Elbow": (0.32, 0.0), "Girth": (0.20, -0.07),
    "belly": (-0.05, -0.1), "flank": (-0.27, 0.1), "hipjoint": (-0.36, 0.5),
    "back": (-0.02, 0.88), "croup": (-0.40, 0.99), "Hip": (-0.30, 0.9),
    "tailhead": (-0.50, 0.88), "Ischium": (-0.53, 0.66), "buttock": (-0.50, 0.35),
}  # fmt: skip


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


# ----------------------------------------------------------------------------- gait


def _stride(phase: float) -> tuple[float, float]:
    """(swing -1..1, flexion 0..1) of a leg: stance sweeps it back, swing lifts and returns it."""
    phase %= 1.0
    if phase < STANCE:
        return 1 - 2 * phase / STANCE, 0.0
    t = (phase - STANCE) / (1 - STANCE)
    return 2 * t * t * (3 - 2 * t) - 1, float(np.sin(np.pi * t))


def _chain(top: np.ndarray, angles: tuple, lengths: tuple) -> list[np.ndarray]:
    """Joint positions down a leg (y up); angles from straight down, positive = forward."""
    points = [top]
    for angle, length in zip(angles, lengths, strict=True):
        points.append(points[-1] + length * np.array([np.sin(angle), -np.cos(angle)]))
    return points


def _fore_leg(top: np.ndarray, phase: float, scale: float, amp: float) -> list[np.ndarray]:
    swing, flex = _stride(phase)
    a = amp * swing
    angles = (a, a - 1.1 * flex, a + PASTERN_ANGLE - 1.6 * flex)
    return _chain(top, angles, tuple(scale * x for x in FORE_LENGTHS))


def _hind_leg(top: np.ndarray, phase: float, scale: float, amp: float) -> list[np.ndarray]:
    swing, flex = _stride(phase)
    a = amp * swing
    bend = (0.3 * flex, 0.6 * flex, -0.5 * flex, -1.6 * flex)
    angles = tuple(rest + a + b for rest, b in zip(HIND_REST, bend, strict=True))
    return _chain(top, angles, tuple(scale * x for x in HIND_LENGTHS))


def horse_points(look: Look, phase: float, head_lift: float, amp: float) -> dict[str, np.ndarray]:
    """Named 2D points of a walking horse in wither heights (x forward, y up, ground at 0).

    Keypoints carry their bodypart names; lower-case names are outline points for drawing.
    """
    fore_height = look.legs * (sum(FORE_LENGTHS[:2]) + FORE_LENGTHS[2] * np.cos(PASTERN_ANGLE))
    p = {
        name: np.array([x * look.length, fore_height + y * look.depth])
        for name, (x, y) in BODY.items()
    }
    hind_rest = sum(n * np.cos(a) for n, a in zip(HIND_LENGTHS, HIND_REST, strict=True))
    hind_scale = p["hipjoint"][1] / hind_rest  # hind feet reach the ground at rest
    legs = {
        "near_fore": _fore_leg(p["Elbow"], phase + WALK_PHASE["near_fore"], look.legs, amp),
        "off_fore": _fore_leg(p["Elbow"], phase + WALK_PHASE["off_fore"], look.legs, amp),
        "near_hind": _hind_leg(p["hipjoint"], phase + WALK_PHASE["near_hind"], hind_scale, amp),
        "off_hind": _hind_leg(p["hipjoint"], phase + WALK_PHASE["off_hind"], hind_scale, amp),
    }
    for leg, joints in legs.items():
        offset = OFF_SIDE if leg.startswith("off") else 0.0
        p.update({name: point + offset for name, point in zip(LEGS[leg], joints, strict=True)})
    # Neck and head: the head nods twice per stride, as a walking horse's does.
    neck_angle = 0.9 + head_lift + 0.06 * np.sin(4 * np.pi * phase)
    base = 0.5 * (p["Wither"] + p["Shoulder"])
    p["poll"] = base + 0.55 * look.neck * np.array([np.cos(neck_angle), np.sin(neck_angle)])
    head_angle = neck_angle - 2.0
    along = np.array([np.cos(head_angle), np.sin(head_angle)])
    front = np.array([-along[1], along[0]])  # perpendicular, towards the forehead
    length = 0.38 * look.head
    p["Nose"] = p["poll"] + length * along
    p["Eye"] = p["poll"] + 0.3 * length * along + 0.02 * front
    p["forehead"] = p["poll"] + 0.06 * front
    p["muzzle_top"] = p["Nose"] + 0.035 * front
    p["muzzle_bottom"] = p["Nose"] - 0.045 * front
    p["jaw"] = p["poll"] + 0.4 * length * along - 0.09 * front
    p["throat"] = p["poll"] + 0.05 * along - 0.08 * front
    p["ear"] = p["poll"] + 0.13 * np.array([np.cos(neck_angle + 0.2), np.sin(neck_angle + 0.2)])
    p["crest"] = 0.5 * (p["Wither"] + p["poll"]) + 0.05 * np.array([-1.0, 1.0])
    p["tail_tip"] = p["tailhead"] + np.array([-0.12 + 0.04 * np.sin(2 * np.pi * phase), -0.6])
    # Lift or lower the whole body so the lowest hoof stands on the ground.
    feet = [p[n][1] for n in ("Nearfrontfoot", "Nearhindfoot")]
    feet += [p[n][1] - OFF_SIDE[1] for n in ("Offfrontfoot", "Offhindfoot")]
    return {name: point - np.array([0.0, min(feet)]) for name, point in p.items()}


# ----------------------------------------------------------------------------- frames


def render_individual(
    seed: int, index: int, n_frames: int, size: tuple[int, int], domain_shift: float
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(RGB image, keypoints (22, 2) with NaN outside the image) for each frame of one horse.

    Seeded by ``(seed, index)`` only, so an individual is the same however many are made.
    """
    width, height = size
    rng = np.random.default_rng([seed, index])
    styles = frame_styles(rng, n_frames, domain_shift)
    times = np.sort(rng.random(n_frames))
    start, end = rng.uniform(-0.1, 0.3), rng.uniform(0.7, 1.1)  # body centre, image widths
    ground, cycles, phase0 = rng.uniform(0.8, 0.95), rng.uniform(6, 10), rng.random()
    for style, t in zip(styles, times, strict=True):
        look = make_look(style)
        phase = (phase0 + cycles * t) % 1.0
        points = horse_points(look, phase, rng.uniform(-0.2, 0.2), rng.uniform(0.25, 0.4))
        frame = Frame(
            points=points,
            scale=look.size * height * rng.uniform(0.92, 1.08),
            origin=np.array([(start + (end - start) * t) * width, ground * height]),
            phase=phase,
            size=size,
        )
        image = render_frame(frame, look, rng)
        keypoints = np.array([frame.to_image(points[name]) for name in BODYPARTS])
        outside = (keypoints < 0).any(axis=1) | (keypoints > [width - 1, height - 1]).any(axis=1)
        keypoints[outside] = np.nan
        yield image, keypoints.astype(np.float32)


def generate(
    out_dir: str | Path,
    individuals: int = 30,
    frames_per_individual: int = 40,
    size: tuple[int, int] = (288, 162),
    seed: int = 0,
    domain_shift: float = 1.0,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> PoseDataset:
    """Write a synthetic Horse-10-like DeepLabCut project; nothing is left if it fails.

    ``size`` is (width, height). ``progress(i)`` is called after individual ``i`` is written.
    ``force`` replaces a non-empty ``out_dir``.
    """
    out_dir = Path(out_dir)
    _check_arguments(out_dir, individuals, frames_per_individual, size, domain_shift, force)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        images, keypoints, groups = [], [], []
        for index in range(individuals):
            group = f"horse{index:03d}"
            folder = staging / "labeled-data" / group
            folder.mkdir(parents=True)
            frames = render_individual(seed, index, frames_per_individual, size, domain_shift)
            for number, (image, points) in enumerate(frames):
                name = f"labeled-data/{group}/img{number:04d}.png"
                if not cv2.imwrite(str(staging / name), image[..., ::-1]):
                    raise PoseshiftError(f"could not write {out_dir / name}: is the disk full?")
                images.append(name)
                keypoints.append(points)
                groups.append(group)
            if progress is not None:
                progress(index)
        dataset = PoseDataset(
            root=staging,
            scorer=SCORER,
            bodyparts=list(BODYPARTS),
            images=images,
            keypoints=np.stack(keypoints),
            groups=groups,
            image_sizes=np.tile(np.array(size, dtype=np.int64), (len(images), 1)),
            skeleton=list(SKELETON),
            task="synthhorse",
        )
        write_project(dataset, project_path=out_dir)
        settings = {
            "individuals": individuals, "frames_per_individual": frames_per_individual,
            "size": f"{size[0]}x{size[1]}", "seed": seed, "domain_shift": domain_shift,
        }  # fmt: skip
        write_text_atomic(staging / "synth.yaml", yaml.safe_dump(settings, sort_keys=False))
        _move_into_place(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    dataset.root = out_dir
    return dataset


def _check_arguments(
    out_dir: Path, individuals: int, frames: int, size: tuple[int, int], shift: float, force: bool
) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise PoseshiftError(f"{out_dir} is a file; choose a folder for the synthetic project")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise PoseshiftError(
            f"{out_dir} exists and is not empty; choose a new folder or pass --force to replace it"
        )
    if individuals < 1 or frames < 1:
        raise PoseshiftError("--individuals and --frames-per-individual must be at least 1")
    if min(size) < 32:
        raise PoseshiftError(f"--size {size[0]}x{size[1]} is too small; use at least 32x32")
    if not 0.0 <= shift <= 1.0:
        raise PoseshiftError(f"--domain-shift must be between 0 and 1, got {shift}")


def _move_into_place(staging: Path, out_dir: Path) -> None:
    """Rename the finished staging folder onto ``out_dir`` (replacing it when forced)."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        out_dir.rename(old)
    staging.rename(out_dir)
    if old is not None:
        shutil.rmtree(old)


def parse_size(text: str) -> tuple[int, int]:
    """``"288x162"`` -> (288, 162); anything else is a one-line error."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise PoseshiftError(
            f"--size must look like WIDTHxHEIGHT, e.g. 288x162, got {text!r}"
        ) from None
    return width, height
