"""The synthetic horse's anatomy and walk: Horse-30 keypoints, skeleton and gait.

``horse_points`` gives the named 2D points of one walking horse (in wither heights) for a
``Look``'s proportions and a gait phase; rendering and generation both read these names.
"""

from __future__ import annotations

import numpy as np

from poseshift.datasets.synthetic.look import Look

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
LEGS = {
    "near_fore": ("Elbow", "Nearknee", "Nearfrontfetlock", "Nearfrontfoot"),
    "near_hind": ("hipjoint", "Stifle", "Nearhindhock", "Nearhindfetlock", "Nearhindfoot"),
    "off_fore": ("off_elbow", "Offknee", "Offfrontfetlock", "Offfrontfoot"),
    "off_hind": ("off_hipjoint", "off_stifle", "Offhindhock", "Offhindfetlock", "Offhindfoot"),
}  # joint names top to bottom; socks go on the legs in this order

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
